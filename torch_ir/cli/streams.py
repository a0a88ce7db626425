"""Where the CLI reads and writes IRs: a path, or ``-`` for stdin / stdout (as mlir-opt does).

An IR input is either the JSON file format or the text form (``graph(...) {...}`` or ``module {...}``),
told apart by its content, not its name, as mlir-opt reads ``.mlir``: the first character that is not
whitespace or a ``//`` comment is ``{`` for JSON. A UTF-8 byte order mark is skipped. An IR output is JSON
or the text form: chosen with ``--emit``, else by the output's suffix (``.tir`` and ``.txt`` are text).
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any

from torch_ir.errors import SerializationError, TextParseError

if TYPE_CHECKING:
    from torch_ir.ir.module import IR

STDIO = "-"
"""The path that means stdin (for an input) or stdout (for an output)."""

EMIT_FORMATS = ("json", "text")
"""What an IR output can be: the JSON file format, or the text form with its metadata."""

TEXT_SUFFIXES = (".tir", ".txt")
"""Output suffixes that mean the text form when ``--emit`` is not given."""

_BOM = "\ufeff"
_LEADING = re.compile(r"(?:\s+|//[^\n]*)*")
_TEXT_HEADS = ("graph", "module", "program")
"""How a document in the text form starts: a graph, a module, or a program of earlier releases."""


def read_text(path: str) -> tuple[str, str]:
    """``(text, source name)`` of ``path``, or of stdin when ``path`` is ``-``; a byte order mark is dropped."""
    if path == STDIO:
        if sys.stdin is None or sys.stdin.isatty():
            raise SerializationError("reading the IR from stdin ('-'), but stdin is a terminal: pipe a file in")
        try:
            return sys.stdin.read().removeprefix(_BOM), "<stdin>"
        except (OSError, UnicodeDecodeError) as exc:
            raise SerializationError(f"<stdin>: cannot read: {exc}") from None
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read(), path
    except FileNotFoundError:
        raise SerializationError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SerializationError(f"{path}: is a directory, not an IR file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SerializationError(f"{path}: cannot read: {exc}") from None


def is_json(text: str) -> bool:
    """Whether ``text`` is (meant as) JSON rather than the text form: it starts with ``{`` or ``[``."""
    start = _LEADING.match(text)
    rest = text[start.end() if start else 0 :]
    return rest[:1] in ("{", "[")


def ir_from_text(text: str, source: str) -> IR:
    """The IR in ``text``: JSON or the text form, by content (see the module docstring)."""
    if is_json(text):
        from torch_ir.serde import loads

        return loads(text, source=source)
    return parse_text_form(text, source)


def parse_text_form(text: str, source: str) -> IR:
    """The IR of a text-form document (one graph, a module, or the program form of earlier releases);
    errors name ``source``, line and column."""
    from torch_ir.ir.text import parse_module

    start = _LEADING.match(text)
    head = text[start.end() if start else 0 :]
    if head.startswith(_TEXT_HEADS):
        try:
            return parse_module(text)
        except TextParseError as exc:
            hint = ""
            if "unexpected text after" in str(exc) and re.search(r"^// -----", text, re.M):
                hint = "\n(several IRs separated by '// -----' lines: give --split-input-file)"
            raise TextParseError(f"{source}: {exc}{hint}") from exc
    first = head.split("\n", 1)[0][:40]
    raise SerializationError(
        f"{source}: not an IR: expected JSON ('{{'), or the text form ('graph(...) {{' or 'module {{'), got {first!r}"
        if first
        else f"{source}: empty: expected an IR in JSON or in the text form"
    )


def read_ir(path: str) -> IR:
    """Load an IR (JSON or text form) from a file, or from stdin when ``path`` is ``-``."""
    text, source = read_text(path)
    return ir_from_text(text, source)


def emit_format(path: str | None, explicit: str | None, default: str = "json") -> str:
    """The format of an IR output: ``explicit`` (``--emit``) if given, else by the suffix of ``path``."""
    if explicit is not None:
        return explicit
    if path and path != STDIO and os.path.splitext(path)[1].lower() in TEXT_SUFFIXES:
        return "text"
    return default


def render_ir(ir: IR, form: str, *, run_record: bool = False) -> str:
    """``ir`` as JSON or as the text form with its metadata (what a file that is read back needs)."""
    if form == "text":
        return ir.to_text(metadata=True) + "\n"
    from torch_ir.serde import dumps

    return dumps(ir, run_record=run_record)


STDOUT_CHUNK = 1 << 16
"""Bytes per write to stdout: a reader that stops early (``| head -c 10``) is noticed on the next write, and
the command ends with status 141; one large write would be reported as done by the pipe."""


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (atomically, or into a FIFO or device), or to stdout when ``path`` is ``-``."""
    if path == STDIO:
        for start in range(0, len(text), STDOUT_CHUNK):
            sys.stdout.write(text[start : start + STDOUT_CHUNK])
            sys.stdout.flush()
        return
    from torch_ir.serde.files import atomic_write_text

    atomic_write_text(path, text)


def write_ir(ir: IR, path: str, form: str = "json", *, run_record: bool = False) -> None:
    """Write ``ir`` (``form``: json or text) to ``path``, or to stdout when ``path`` is ``-``."""
    write_text(path, render_ir(ir, form, run_record=run_record))


def check_output(path: str | None) -> None:
    """Refuse an output path that names a folder, before any work (``-`` and no path are stdout)."""
    if path and path != STDIO:
        from torch_ir.serde.files import check_output_path

        check_output_path(path)


def check_output_folder(path: str) -> None:
    """Refuse an output folder (``report --format model-explorer -o DIR``) that names a file, before any work."""
    from torch_ir.serde.files import check_output_folder_path

    check_output_folder_path(path)


def document(text: str, source: str) -> Any:
    """The parsed JSON document of ``text`` (for files that are not IRs: reproducers)."""
    from torch_ir.serde import loads_document

    return loads_document(text, source)


__all__ = [
    "EMIT_FORMATS",
    "STDIO",
    "TEXT_SUFFIXES",
    "check_output",
    "check_output_folder",
    "document",
    "emit_format",
    "ir_from_text",
    "is_json",
    "parse_text_form",
    "read_ir",
    "read_text",
    "render_ir",
    "write_ir",
    "write_text",
]
