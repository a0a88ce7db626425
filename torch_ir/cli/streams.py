"""Where the CLI reads and writes IRs: a path, or ``-`` for stdin / stdout (as mlir-opt does)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from torch_ir.errors import SerializationError

if TYPE_CHECKING:
    from torch_ir.ir.module import IR

STDIO = "-"
"""The path that means stdin (for an input) or stdout (for an output)."""


def read_text(path: str) -> tuple[str, str]:
    """``(text, source name)`` of ``path``, or of stdin when ``path`` is ``-``."""
    if path == STDIO:
        if sys.stdin is None or sys.stdin.isatty():
            raise SerializationError("reading the IR from stdin ('-'), but stdin is a terminal: pipe a file in")
        try:
            return sys.stdin.read(), "<stdin>"
        except (OSError, UnicodeDecodeError) as exc:
            raise SerializationError(f"<stdin>: cannot read: {exc}") from None
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except FileNotFoundError:
        raise SerializationError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SerializationError(f"{path}: is a directory, not an IR file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SerializationError(f"{path}: cannot read: {exc}") from None


def read_ir(path: str) -> IR:
    """Load an IR file, or an IR piped into stdin when ``path`` is ``-``."""
    from torch_ir.serde import loads

    text, source = read_text(path)
    return loads(text, source=source)


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, or to stdout when ``path`` is ``-``."""
    if path == STDIO:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from torch_ir.serde.files import atomic_write_text

    atomic_write_text(path, text)


def write_ir(ir: IR, path: str) -> None:
    """Write ``ir`` as JSON to ``path`` atomically, or to stdout when ``path`` is ``-``."""
    from torch_ir.serde import dumps

    write_text(path, dumps(ir))


__all__ = ["STDIO", "read_ir", "read_text", "write_ir", "write_text"]
