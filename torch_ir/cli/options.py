"""Flags several commands share, and argument types that refuse values outside their range.

A type here raises ``argparse.ArgumentTypeError``: argparse prints the command's usage and the reason and
exits with status 2, before any work, like every other usage error.
"""

from __future__ import annotations

import argparse
import math

VERBOSE_HELP = "on failure, print the traceback (the causes first: torch's own error where torch failed)"


def add_verbose(parser: argparse.ArgumentParser, also: str = "") -> None:
    """``-v/--verbose``: the traceback of a failure, as every command has it (``also``: what this command
    adds to it)."""
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP + also)


def positive_int(text: str) -> int:
    """An integer of at least 1 (a count, a length, a size)."""
    return _int_at_least(text, 1, "an integer of at least 1")


def sequence_length(text: str) -> int:
    """A sequence or cache length of at least 2 (torch.export specializes a length of 1)."""
    return _int_at_least(text, 2, "a length of at least 2 (torch.export specializes 1)")


def non_negative_int(text: str) -> int:
    """An integer of 0 or more (a seed, a depth)."""
    return _int_at_least(text, 0, "an integer of 0 or more")


def tolerance(text: str) -> float:
    """A finite number of 0 or more: an ``inf`` or ``nan`` tolerance would accept any output."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number such as 1e-4") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a tolerance must be a finite number of 0 or more")
    return value


def byte_count(text: str) -> int:
    """A number of bytes: ``1073741824``, ``512M``, ``8G`` (binary units K, M, G, T)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    body = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = units.get(body[-1:], 1)
    digits = body[:-1] if body[-1:] in units else body
    try:
        value = int(float(digits) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of bytes (8G, 512M, 1073741824)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of bytes must be positive")
    return value


def positive_seconds(text: str) -> float:
    """A finite number of seconds above 0 (a time limit)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds such as 30") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a time limit must be a finite number of seconds above 0")
    return value


def pipeline_text(text: str) -> str:
    """Pipeline text, a pipeline file, ``default`` or ``none``; never empty (that is ``none`` said unclearly)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty pipeline: name passes (canonicalize,cse), 'default', or 'none'")
    return text


def _int_at_least(text: str, minimum: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")
    return value


__all__ = [
    "VERBOSE_HELP",
    "add_verbose",
    "byte_count",
    "non_negative_int",
    "pipeline_text",
    "positive_int",
    "positive_seconds",
    "sequence_length",
    "tolerance",
]
