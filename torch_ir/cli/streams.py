"""Where the CLI reads and writes IRs: a path, or ``-`` for stdin / stdout (as mlir-opt does).

An IR input is the JSON file format or the text form (``graph(...) {...}``, ``module {...}``), told apart
by its content, as mlir-opt reads ``.mlir``: the first character that is not whitespace or part of a ``//``
comment is ``{`` for JSON.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

from torch_ir.errors import SerializationError

if TYPE_CHECKING:
    from torch_ir.ir.module import IR

STDIO = "-"
"""The path that means stdin (for an input) or stdout (for an output)."""

_LEADING = re.compile(r"(?:\s+|//[^\n]*)*")


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


def is_json(text: str) -> bool:
    """Whether ``text`` is (meant as) JSON rather than the text form: it starts with ``{`` or ``[``."""
    start = _LEADING.match(text)
    rest = text[start.end() if start else 0 :].lstrip("\ufeff")
    return rest[:1] in ("{", "[")


def parse_text_form(text: str, source: str) -> IR:
    """The module of a text-form document (``graph(...) {...}``, ``module {...}``); errors name ``source``."""
    from torch_ir.errors import TextParseError
    from torch_ir.ir.text import parse_module

    start = _LEADING.match(text)
    if not text[start.end() if start else 0 :].strip():
        raise SerializationError(f"{source}: empty: expected an IR in JSON or in the text form")
    try:
        return parse_module(text)
    except TextParseError as exc:
        hint = ""
        if "unexpected text after" in str(exc) and re.search(r"^// -----", text, re.M):
            hint = "\n(several IRs separated by '// -----' lines: give --split-input-file)"
        raise TextParseError(f"{source}: {exc}{hint}") from None


def ir_from_text(text: str, source: str) -> IR:
    """The IR in ``text``: JSON or the text form, by content (see the module docstring)."""
    if is_json(text):
        from torch_ir.serde import loads

        return loads(text, source=source)
    return parse_text_form(text, source)


def read_ir(path: str) -> IR:
    """Load an IR file (JSON), or an IR piped into stdin when ``path`` is ``-``."""
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


__all__ = ["STDIO", "ir_from_text", "is_json", "parse_text_form", "read_ir", "read_text", "write_ir", "write_text"]
