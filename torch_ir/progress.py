"""Progress on a terminal: one line per stage (export, convert, each pass, write) with its time.

During export, ``layer_progress(progress, model)`` counts the model's repeated blocks as torch.export
runs through them (forward hooks on, say, the 32 decoder layers): the live line shows
``export (torch.export)  [#####.....] 16/32 LlamaDecoderLayer``; with ``verbose`` and no terminal, a line
at each quarter.

``Progress`` shows nothing when stderr is not a terminal or a ``CI`` variable is set (pipes, CI logs stay
clean), unless ``verbose``; ``quiet`` silences it everywhere. Stage figures still go into the
``StageReport`` it is given, so the summary has them either way. ``progress.instrumentation()`` gives a
``ProgressInstrumentation`` for the pass manager (its hooks: before/after pipeline, before/after pass).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import torch

from torch_ir.ir.run_record import StageReport

_TICK_SECONDS = 0.25


def interactive(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal a person watches (not a pipe, not CI)."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


class Progress:
    """Stage lines on stderr: live elapsed time on a terminal, one finished line per stage otherwise.

    ``enabled`` None decides from the stream (a terminal outside CI); ``verbose`` forces lines on and
    adds per-pass lines; ``quiet`` turns everything off.
    """

    def __init__(
        self, *, enabled: bool | None = None, verbose: bool = False, quiet: bool = False, stream: TextIO | None = None
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.live = interactive(self.stream) and not quiet
        self.enabled = False if quiet else (verbose or (self.live if enabled is None else enabled))
        self.verbose = verbose and not quiet
        self._lock = threading.Lock()
        self._suffix = ""

    @contextmanager
    def stage(
        self, name: str, stages: StageReport | None = None, detail: str = "", *, ticker: bool = True
    ) -> Iterator[None]:
        """Show ``name`` while the body runs and its time when it ends; record it in ``stages`` if given.

        ``ticker=False`` leaves the live line to the body (a pipeline shows its passes itself).
        """
        label = f"{name} {detail}".strip()
        self._suffix = ""
        stop = threading.Event()
        start = time.perf_counter()
        thread = None
        if self.enabled and self.live and ticker:
            thread = threading.Thread(target=self._tick, args=(label, start, stop), daemon=True)
            thread.start()
        failed = True
        try:
            if stages is not None:
                with stages.measure(name):
                    yield
            else:
                yield
            failed = False
        finally:
            stop.set()
            if thread is not None:
                thread.join()
            if self.enabled:
                elapsed = time.perf_counter() - start
                self._line(f"{label:<40} {'failed' if failed else 'done'} {elapsed:8.2f}s")

    def message(self, text: str) -> None:
        """One line of progress text (shown when progress is shown)."""
        if self.enabled:
            self._line(text)

    def debug(self, text: str) -> None:
        """One line shown only with ``verbose``."""
        if self.verbose:
            self._line(text)

    def detail(self, text: str) -> None:
        """One line kept on a terminal or with ``verbose``, not in a plain log."""
        if self.enabled and (self.live or self.verbose):
            self._line(text)

    def status(self, text: str) -> None:
        """A transient line on a terminal (overwritten by the next line)."""
        if self.enabled and self.live:
            with self._lock:
                self.stream.write(f"\r\x1b[K{text}")
                self.stream.flush()

    def update(self, suffix: str, line: str | None = None) -> None:
        """Show ``suffix`` after the live stage line (the next tick draws it); without a terminal, print
        ``line`` when given and ``verbose``."""
        self._suffix = suffix
        if line is not None and self.verbose and not self.live:
            self._line(line)

    def _tick(self, label: str, start: float, stop: threading.Event) -> None:
        while not stop.wait(_TICK_SECONDS):
            with self._lock:
                suffix = f"  {self._suffix}" if self._suffix else ""
                self.stream.write(f"\r{label:<40} {time.perf_counter() - start:8.1f}s{suffix}\x1b[K")
                self.stream.flush()

    def _line(self, text: str) -> None:
        with self._lock:
            prefix = "\r\x1b[K" if self.live else ""
            self.stream.write(f"{prefix}{text}\n")
            self.stream.flush()

    def instrumentation(self) -> Any:
        """A ``ProgressInstrumentation`` for the pass manager, or None where the pass manager has no
        ``Instrumentation`` base class."""
        cls = progress_instrumentation_class()
        return None if cls is None else cls(self)


def repeated_blocks(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The longest run of consecutive children of one module that share a class (the decoder layers of
    an LLM, the blocks of a ResNet stage), as ``(qualified name, module)``; empty when there is none."""
    best: list[tuple[str, Any]] = []
    for prefix, module in model.named_modules():
        run: list[tuple[str, Any]] = []
        for name, child in [*module.named_children(), ("", None)]:
            if run and child is not None and type(child) is type(run[-1][1]):
                run.append((f"{prefix}.{name}" if prefix else name, child))
                continue
            if len(run) >= 2 and len(run) > len(best):
                best = run
            run = [(f"{prefix}.{name}" if prefix else name, child)] if child is not None else []
    return best


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // max(total, 1)
    return "[" + "#" * filled + "." * (width - filled) + "]"


@contextmanager
def layer_progress(progress: Progress, model: torch.nn.Module) -> Iterator[int]:
    """While the body traces ``model``, count its repeated blocks as their forward runs (forward hooks,
    removed afterwards; they change nothing in the trace). Yields the number of blocks (0: none found, or
    progress is off)."""
    blocks = repeated_blocks(model) if progress.enabled else []
    if len(blocks) < 2:
        yield 0
        return
    total = len(blocks)
    kind = type(blocks[0][1]).__name__
    done = [0]

    def hook(module: Any, args: Any, output: Any) -> None:
        done[0] = done[0] % total + 1
        quarter = done[0] * 4 // total != (done[0] - 1) * 4 // total
        text = f"{done[0]}/{total} {kind}"
        live = f"{_bar(done[0], total)} {text}" + (" traced, finishing the export" if done[0] == total else "")
        progress.update(live, f"  export: {text} traced" if quarter else None)

    handles = [module.register_forward_hook(hook) for _, module in blocks]
    try:
        progress.update(f"{_bar(0, total)} 0/{total} {kind}")
        yield total
    finally:
        for handle in handles:
            handle.remove()


_CLASS: list[Any] = []


def progress_instrumentation_class() -> type | None:
    """``ProgressInstrumentation``, a subclass of ``torch_ir.passes.manager.Instrumentation`` (made on first
    use, so importing this module does not import the pass manager); None if that base does not exist."""
    if _CLASS:
        return _CLASS[0]
    try:
        from torch_ir.passes.manager import Instrumentation
    except ImportError:
        return None

    class ProgressInstrumentation(Instrumentation):
        """Shows each pass of a pipeline as a progress line (``[2/5] cse``) with its time."""

        def __init__(self, progress: Progress):
            self.progress = progress
            self.total = 0
            self._pass_start = 0.0
            self._pipeline_start = 0.0

        def before_pipeline(self, graph: Any, manager: Any) -> None:
            self.total = len(getattr(manager, "passes", ()) or ())
            self._pipeline_start = time.perf_counter()

        def after_pipeline(self, graph: Any, manager: Any) -> None:
            elapsed = time.perf_counter() - self._pipeline_start
            self.progress.debug(f"{f'pipeline ({self.total} passes)':<40} done {elapsed:8.2f}s")

        def before_pass(self, p: Any, graph: Any, index: int) -> None:
            self._pass_start = time.perf_counter()
            self.progress.status(f"  [{index}/{self.total}] {p.name}")

        def after_pass(self, p: Any, graph: Any, index: int, result: Any) -> None:
            elapsed = time.perf_counter() - self._pass_start
            changed = "changed" if getattr(result, "modified", False) else "unchanged"
            line = f"  [{index}/{self.total}] {p.name}"
            self.progress.detail(f"{line:<40} {changed:<9} {elapsed:8.3f}s")

        def after_failure(self, p: Any, graph: Any, index: int, error: Any) -> None:
            self.progress.message(f"  [{index}/{self.total}] {p.name} failed")

    _CLASS.append(ProgressInstrumentation)
    return ProgressInstrumentation


__all__ = ["Progress", "interactive", "layer_progress", "progress_instrumentation_class", "repeated_blocks"]
