"""Parts of an input and expected errors, for ``torch-ir opt`` (after mlir-opt's ``--split-input-file`` and
``--verify-diagnostics``).

``split_input`` cuts a file at lines ``// -----`` into parts that are read and run one by one; each part
keeps the line numbers of the whole file, so errors point at the file's lines. ``expected_errors`` reads a
part's ``// expected-error {{text}}`` comments: the part must fail with an error whose message contains
``text``, on the comment's line (``expected-error@+1``, ``@-2``: that many lines below or above it;
``@*``: anywhere, or where no line is known). ``check_errors`` compares the expected errors with what
happened. An error's line is known for a parse error (its line) and for a pass that failed on a node of the
input (the line that defines the node).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from torch_ir.errors import TextParseError

SPLIT_MARKER = "// -----"
"""The line that separates the parts of a ``--split-input-file`` input (and of its output)."""

_SPLIT = re.compile(r"^// -----[^\n]*$", re.M)
_EXPECTED = re.compile(r"//\s*expected-(?P<kind>[a-z]+)(?:\s*@(?P<at>[+-]\d+|\*))?\s*(?:\{\{(?P<text>.*?)\}\})?")
_PARSE_LINE = re.compile(r"\bline (\d+), column \d+")


@dataclass(frozen=True)
class Part:
    """One part of the input: its text (preceded by blank lines, so lines count from the file's start), the
    number of its first line, and its index from 1."""

    text: str
    line: int
    index: int


def split_input(text: str) -> list[Part]:
    """The parts of ``text`` between ``// -----`` lines, in order."""
    parts: list[Part] = []
    start = 0
    line = 1
    for marker in _SPLIT.finditer(text):
        parts.append(Part("\n" * (line - 1) + text[start : marker.start()], line, len(parts) + 1))
        line += text.count("\n", start, marker.end()) + 1
        start = marker.end() + 1
    parts.append(Part("\n" * (line - 1) + text[start:], line, len(parts) + 1))
    return parts


@dataclass(frozen=True)
class ExpectedError:
    """An ``expected-error`` comment: the text the message must contain and the line it must be on (None:
    any line, ``@*``)."""

    text: str
    line: int | None
    comment_line: int


def expected_errors(part: Part) -> list[ExpectedError]:
    """The ``expected-error`` comments of a part; a malformed one, or another kind, is a ``ValueError``."""
    found: list[ExpectedError] = []
    for number, line in enumerate(part.text.split("\n"), 1):
        for match in _EXPECTED.finditer(line):
            if match.group("kind") != "error":
                raise ValueError(
                    f"line {number}: expected-{match.group('kind')}: only expected-error is checked (errors are "
                    "the diagnostics torch-ir opt reports)"
                )
            if match.group("text") is None:
                raise ValueError(f"line {number}: expected-error needs its message: expected-error {{{{text}}}}")
            at = match.group("at")
            target = None if at == "*" else number + (int(at) if at else 0)
            found.append(ExpectedError(match.group("text"), target, number))
    return found


def error_line(error: BaseException, part: Part, node_name: str | None) -> int | None:
    """The line of ``part`` an error is about: a parse error's line, or the line that defines the node a
    pass failed on; None when neither is known."""
    if isinstance(error, TextParseError):
        found = _PARSE_LINE.search(str(error))
        return int(found.group(1)) if found else None
    if node_name is None:
        return None
    spellings = "|".join(re.escape(n) for n in {node_name, json.dumps(node_name)})
    defines = re.compile(rf"^\s*(?:%(?:\"[^\"]*\"|[^\s,]+)\s*,\s*)*%(?:{spellings})\s*[,=]|\bloc\((?:{spellings})\)")
    for number, line in enumerate(part.text.split("\n"), 1):
        if defines.search(line.split("//", 1)[0]):
            return number
    return None


def check_errors(expected: list[ExpectedError], error: BaseException | None, line: int | None) -> list[str]:
    """What differs between the expected errors of a part and the error it raised (if any), as messages
    that start with a line number; empty when they agree."""
    problems: list[str] = []
    matched = False
    for want in expected:
        hit = error is not None and not matched and want.text in str(error) and (want.line is None or want.line == line)
        if hit:
            matched = True
            continue
        where = "" if want.line is None else f" on line {want.line}"
        problems.append(f"{want.comment_line}: expected error{where} was not produced: {want.text!r}")
    if error is not None and not matched:
        at = f"{line}" if line is not None else "?"
        problems.append(f"{at}: unexpected error: {error}")
    return problems


__all__ = ["SPLIT_MARKER", "ExpectedError", "Part", "check_errors", "error_line", "expected_errors", "split_input"]
