"""Outputs never destroy what is at their path: a FIFO or device is written into (never renamed over), a
folder is an error, and two outputs that resolve to one file are refused before anything is written."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from torch_ir import SerializationError, load_ir
from torch_ir.cli import EXIT_USAGE, main
from torch_ir.cli.streams import ir_from_text
from torch_ir.serde.files import atomic_write_text, check_distinct_outputs


class _FifoReader:
    """Reads a FIFO to its end in a thread (a writer's open blocks until a reader opens it)."""

    def __init__(self, path: Path):
        self.data = b""
        self.thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self.thread.start()

    def _read(self, path: Path) -> None:
        with open(path, "rb") as f:
            self.data = f.read()

    def result(self) -> bytes:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the FIFO was never written and closed"
        return self.data


def _fifo(tmp_path: Path, name: str = "pipe") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def test_writing_into_a_fifo_keeps_it_a_fifo(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path)
    reader = _FifoReader(fifo)
    atomic_write_text(fifo, "hello\n")
    assert reader.result() == b"hello\n"
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary file left behind


@pytest.mark.parametrize(
    "argv",
    [
        ["opt", "{ir}", "-p", "none", "-o", "{out}"],
        ["opt", "{ir}", "-p", "none", "-o", "{out}", "--emit", "text"],
        ["report", "{ir}", "-o", "{out}"],
        ["report", "{ir}", "--format", "mermaid", "-o", "{out}"],
    ],
    ids=["opt-json", "opt-text", "report-markdown", "report-mermaid"],
)
def test_cli_outputs_into_a_fifo(tower_ir_file: Path, tmp_path: Path, argv: list[str]) -> None:
    fifo = _fifo(tmp_path)
    reader = _FifoReader(fifo)
    assert main([a.replace("{ir}", str(tower_ir_file)).replace("{out}", str(fifo)) for a in argv]) == 0
    data = reader.result().decode()
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    if argv[0] == "opt":
        assert ir_from_text(data, "fifo") == ir_from_text(tower_ir_file.read_text(), "ir")
    else:
        assert data.startswith(("# ", "flowchart"))


def test_extract_into_a_fifo(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path, "gpt.json")
    reader = _FifoReader(fifo)
    assert main(["extract", "zoo:gpt", "-o", str(fifo), "-q"]) == 0
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert ir_from_text(reader.result().decode(), "fifo").name == "gpt"


def test_a_character_device_stays_a_device(tmp_path: Path) -> None:
    """A null device node made in tmp_path (root only, where the file system allows device nodes)."""
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        device.write_bytes(b"")  # a file system mounted nodev refuses to open device nodes
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    atomic_write_text(device, "x" * 100_000)
    assert stat.S_ISCHR(device.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_a_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


@pytest.mark.parametrize("trailing", ["/", ""], ids=["DIR/", "existing-dir"])
@pytest.mark.parametrize(
    "argv",
    [
        ["extract", "zoo:gpt", "-q", "-o"],
        ["opt", "{ir}", "-p", "none", "-o"],
        ["report", "{ir}", "-o"],
        ["opt", "{ir}", "-p", "none", "--reproducer"],
    ],
    ids=["extract", "opt", "report", "reproducer"],
)
def test_a_folder_as_output_is_an_error(
    tower_ir_file: Path, tmp_path: Path, argv: list[str], trailing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "out"
    if not trailing:
        folder.mkdir()
    argv = [a.replace("{ir}", str(tower_ir_file)) for a in argv] + [f"{folder}{trailing}"]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "is a directory" in err and "Traceback" not in err
    assert (folder.is_dir() and not any(folder.iterdir())) if not trailing else not folder.exists()


@pytest.mark.parametrize(
    ("formats", "output"),
    [("json,markdown", "x.md"), ("json,mermaid", "x.mmd"), ("json,mermaid,markdown", "x.md")],
)
def test_two_formats_into_one_file_is_an_error_before_anything_is_written(
    tmp_path: Path, formats: str, output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["extract", "zoo:gpt", "--format", formats, "-o", str(tmp_path / output)]) == EXIT_USAGE
    assert "two outputs would be written to one file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_program_diagram_into_the_ir_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="one file"):
        check_distinct_outputs([tmp_path / "llm.decode.mmd", tmp_path / "sub" / ".." / "llm.decode.mmd"])


def test_a_failed_write_leaves_the_old_file(tower_ir_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "ir.json"
    out.write_text("old")
    os.chmod(tmp_path, 0o500)  # the folder refuses the temporary file
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("running as a user that ignores permissions")
        with pytest.raises(SerializationError, match="cannot write"):
            load_ir(tower_ir_file).save(out)
    finally:
        os.chmod(tmp_path, 0o700)
    assert out.read_text() == "old"
