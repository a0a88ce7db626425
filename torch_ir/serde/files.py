"""Writing output files safely.

A regular file is written atomically: a temporary file in the same folder, then a rename, so no reader
sees half a file and a failed write leaves the old file intact. A path that names something else is never
renamed over: a FIFO, a character device or a socket already at the path is opened and written into, as
``cat > PATH`` would (so ``-o /dev/stdout`` and a named pipe work, and ``/dev/null`` stays a device). A
folder, or a path that ends in a separator (``out/``), is an error: outputs name files. A symbolic link is
followed, so the file it points to is replaced and the link stays.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from torch_ir.errors import SerializationError


def check_output_path(path: str | os.PathLike[str]) -> None:
    """Raise ``SerializationError`` unless ``path`` can name an output file (see the module docstring)."""
    text = os.fspath(path)
    if not text:
        raise SerializationError("an empty output path: give a file name")
    if text.endswith(("/", os.sep)) or Path(text).is_dir():
        raise SerializationError(f"cannot write {text}: it is a directory; outputs are files, give one inside it")


def check_output_folder_path(path: str | os.PathLike[str]) -> None:
    """Raise ``SerializationError`` unless ``path`` can name a folder that outputs go into: a folder, or
    nothing yet (it is created); a file, FIFO or device there is never replaced by one."""
    text = os.fspath(path)
    if not text:
        raise SerializationError("an empty output folder: give a folder name")
    if Path(text).exists() and not Path(text).is_dir():
        raise SerializationError(f"cannot write into {text}: it is a file, not a folder; give a folder")


def check_distinct_outputs(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Raise ``SerializationError`` when two of ``paths`` are one file (written one over the other), before
    anything is written; each is also checked with ``check_output_path``."""
    seen: dict[str, str] = {}
    for path in paths:
        check_output_path(path)
        key = os.path.realpath(path)
        if key in seen:
            raise SerializationError(
                f"two outputs would be written to one file, {os.fspath(path)} (also {seen[key]}): "
                "give each output its own name"
            )
        seen[key] = os.fspath(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path``: atomically for a regular file (the old file, if any, stays intact on
    failure), straight into a FIFO or device that is already there."""
    check_output_path(path)
    target = Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)
    if _is_special(target):
        _write_into(target, data)
        return
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise SerializationError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        os.chmod(tmp, _mode_for(target))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _remove_quietly(tmp)
        raise SerializationError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` as ``atomic_write_bytes`` does."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _is_special(target: Path) -> bool:
    """Whether something other than a regular file or a folder is at ``target`` (FIFO, device, socket)."""
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _write_into(target: Path, data: bytes) -> None:
    """Write into the FIFO or device at ``target`` (a FIFO blocks until its reader opens it)."""
    try:
        with open(target, "wb", buffering=0) as f:
            view = memoryview(data)
            while view:
                written = f.write(view)
                view = view[written or len(view) :]
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise SerializationError(f"cannot write {target}: {exc.strerror or exc}") from None


def _mode_for(target: Path) -> int:
    """The permissions the file would get from a plain ``open(path, "w")``: the old file's, else the umask's
    (a temporary file is created private, 0600)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "check_distinct_outputs",
    "check_output_folder_path",
    "check_output_path",
]
