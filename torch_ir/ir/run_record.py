"""The run record of an extraction: per-stage figures (wall time, resident memory), pausing the GC during
bulk work on the IR, and warming torch up so that a timed pass is not charged with torch's import."""

from __future__ import annotations

import gc
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def current_rss_bytes() -> int:
    """The resident set size of this process now (0 where /proc is not available)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    """The highest resident set size this process has reached so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@dataclass
class Stage:
    """One measured stage: its wall time, the RSS it added, and the process peak RSS at its end."""

    name: str
    seconds: float = 0.0
    rss_delta_bytes: int = 0
    peak_rss_bytes: int = 0


@dataclass
class StageReport:
    """Figures for each stage of a run, in order; ``str()`` gives a table."""

    stages: list[Stage] = field(default_factory=list)

    @contextmanager
    def measure(self, name: str) -> Iterator[Stage]:
        """Time the body and record its memory figures as the stage ``name``."""
        stage = Stage(name)
        rss_before = current_rss_bytes()
        start = time.perf_counter()
        try:
            yield stage
        finally:
            stage.seconds = time.perf_counter() - start
            stage.rss_delta_bytes = current_rss_bytes() - rss_before
            stage.peak_rss_bytes = peak_rss_bytes()
            self.stages.append(stage)

    @property
    def total_seconds(self) -> float:
        """Wall time over all stages."""
        return sum(s.seconds for s in self.stages)

    def get(self, name: str) -> Stage | None:
        """The stage called ``name``, if it ran."""
        return next((s for s in self.stages if s.name == name), None)

    def to_dict(self) -> list[dict[str, float | int | str]]:
        """The figures as plain data."""
        return [
            {
                "stage": s.name,
                "seconds": s.seconds,
                "rss_delta_bytes": s.rss_delta_bytes,
                "peak_rss_bytes": s.peak_rss_bytes,
            }
            for s in self.stages
        ]

    def __str__(self) -> str:
        rows = [f"{'stage':<24}{'time':>10}{'+RSS':>12}{'peak RSS':>12}"]
        for s in self.stages:
            rows.append(
                f"{s.name:<24}{s.seconds:>9.3f}s{s.rss_delta_bytes / 2**20:>10.1f}MB{s.peak_rss_bytes / 2**20:>10.1f}MB"
            )
        rows.append(f"{'total':<24}{self.total_seconds:>9.3f}s")
        return "\n".join(rows)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the body.

    Building thousands of small objects next to a large traced program otherwise triggers full
    collections that cost more than the work itself. Reference counting still frees memory.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_WARM: dict[str, float] = {}


def warm_up_torch() -> float:
    """Import torch and what its first fake-tensor op loads (dynamo, sympy, the meta kernels), once per
    process; return the seconds this call took (about 0 after the first).

    Passes import torch lazily, so without this the first pass that needs it is charged one to two seconds
    that are not its own. The pass manager calls it before its first timed pass.
    """
    if "torch" in _WARM:
        return 0.0
    start = time.perf_counter()
    try:
        import torch
    except ImportError:  # no torch here: the passes that need it will say so
        _WARM["torch"] = 0.0
        return 0.0
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    with FakeTensorMode(shape_env=ShapeEnv(), allow_non_fake_inputs=True):
        torch.empty(2, 3).add(1).sum()
    _WARM["torch"] = time.perf_counter() - start
    return _WARM["torch"]
