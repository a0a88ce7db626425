"""Capture what torch prints while it traces (its loggers, warnings, stderr), so errors stay short.

``capture_torch_log()`` swaps the handlers of every ``torch.*`` logger for one that records, records
Python warnings, and redirects ``sys.stderr`` for the body. The ``TorchLog`` it yields keeps the full
text; ``summary()`` gives the few lines that say what went wrong (warnings and errors, no graph dumps).
The CLI prints the full text with ``-v``; ``ExportError.torch_log`` carries it to library callers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

from torch_ir.errors import TorchIRWarning

SUMMARY_LINES = 3
"""At most this many torch log lines go into an error message."""


@dataclass
class TorchLog:
    """What torch logged, warned and printed to stderr during a capture, in order."""

    records: list[str] = field(default_factory=list)
    headlines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The full captured text."""
        return "\n".join(self.records)

    def __bool__(self) -> bool:
        return bool(self.records)

    def summary(self, limit: int = SUMMARY_LINES) -> list[str]:
        """Up to ``limit`` distinct one-line warnings or errors (no source dumps), in order."""
        seen: list[str] = []
        for line in self.headlines:
            line = line.strip()
            if line and line not in seen:
                seen.append(line[:300])
        return seen[:limit]

    def add(self, text: str, headline: str | None = None) -> None:
        """Record ``text``; ``headline`` (its first line by default) may appear in the summary."""
        text = text.rstrip("\n")
        if not text.strip():
            return
        self.records.append(text)
        first = headline if headline is not None else text.strip().splitlines()[0]
        self.headlines.append(first)


class _Recorder(logging.Handler):
    def __init__(self, log: TorchLog):
        super().__init__(logging.DEBUG)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed torch log call must not break the export
            message = str(record.msg)
        headline = f"{record.levelname.lower()}: {message.strip().splitlines()[0]}" if message.strip() else ""
        self.log.add(f"[{record.name}] {record.levelname}: {message}", headline)


class _StderrRecorder(io.TextIOBase):
    def __init__(self, log: TorchLog):
        self.log = log
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        return len(text)

    def flush_into_log(self) -> None:
        if self._buffer.strip():
            # stderr prints are mostly graph dumps: kept in full, never in the summary
            self.log.add(self._buffer, headline="")
        self._buffer = ""


@contextlib.contextmanager
def capture_torch_log(log: TorchLog | None = None) -> Iterator[TorchLog]:
    """Record torch's log records, warnings and stderr output for the body (into ``log`` when given)
    instead of printing them."""
    log = log if log is not None else TorchLog()
    recorder = _Recorder(log)
    saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
    for name in ["torch", *list(logging.Logger.manager.loggerDict)]:
        if name != "torch" and not name.startswith("torch."):
            continue
        logger = logging.getLogger(name)
        if name == "torch" or logger.handlers:
            saved.append((logger, list(logger.handlers), logger.propagate))
            logger.handlers = [recorder] if name == "torch" else []
            logger.propagate = name != "torch"
    stderr = _StderrRecorder(log)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as recorded, contextlib.redirect_stderr(stderr):
            warnings.simplefilter("always")
            try:
                yield log
            finally:
                caught = list(recorded or [])
    finally:
        stderr.flush_into_log()
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate
        for w in caught:
            if issubclass(w.category, TorchIRWarning):  # torch-ir's own warnings are for the user: re-issue
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                continue
            text = f"{w.category.__name__}: {w.message}"
            log.add(f"{w.filename}:{w.lineno}: {text}", f"warning: {text}")


__all__ = ["SUMMARY_LINES", "TorchLog", "capture_torch_log"]
