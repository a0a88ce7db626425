"""Which regions a run reached: cond branches taken, loop bodies entered, in the entry and in the functions
it calls.

A verification can only vouch for what ran. ``region_paths(graph)`` lists every region of an IR by path
(``cond_1/true``, ``scan_1/combine/cond_2/false``), and with ``module`` those of its private functions
under ``@name/`` (``@block/cond_1/true``: one count whatever the call site); while a ``RegionCoverage`` is
recording, the interpreter counts each region it executes under the same path. ``coverage_warnings`` names
the regions no trial reached, outermost first (the regions inside one that never ran are not repeated).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from torch_ir.ir.graph import Graph
from torch_ir.ir.module import Module
from torch_ir.ir.regions import region_name

_ACTIVE: ContextVar[RegionCoverage | None] = ContextVar("torch_ir_region_coverage", default=None)


class RegionCoverage:
    """Counts region executions by path while recording (``with coverage.recording(): interp.run(...)``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._stack: list[str] = []

    @contextlib.contextmanager
    def recording(self) -> Iterator[RegionCoverage]:
        """Count the regions run inside the block."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    @contextlib.contextmanager
    def entered(self, label: str) -> Iterator[None]:
        """Inside region ``label`` (``node/region``) of the region being run."""
        self._stack.append(label)
        self.counts["/".join(self._stack)] += 1
        try:
            yield
        finally:
            self._stack.pop()

    @contextlib.contextmanager
    def in_function(self, name: str) -> Iterator[None]:
        """Inside a call of function ``name``: its regions count under ``@name/`` whoever called it."""
        saved, self._stack = self._stack, [f"@{name}"]
        try:
            yield
        finally:
            self._stack = saved


def recording_regions() -> bool:
    """Whether a ``RegionCoverage`` is recording (a run in a worker process then counts its regions too)."""
    return _ACTIVE.get() is not None


def record_regions(counts: Mapping[str, int]) -> None:
    """Add the region counts of a run made elsewhere (a worker process) to the recording ``RegionCoverage``,
    under the region or function being run here (paths of functions, ``@name/...``, stay as they are)."""
    recorder = _ACTIVE.get()
    if recorder is None:
        return
    prefix = "/".join(recorder._stack)
    for path, count in counts.items():
        recorder.counts[path if path.startswith("@") or not prefix else f"{prefix}/{path}"] += int(count)


def entering(label: str, inputs: Sequence[Any]) -> contextlib.AbstractContextManager[None]:
    """What the interpreter wraps a region's execution in: counted while recording, unless the run is the
    dry run on fake tensors."""
    recorder = _ACTIVE.get()
    if recorder is None or _fake(inputs):
        return contextlib.nullcontext()
    return recorder.entered(label)


def calling(name: str, inputs: Sequence[Any]) -> contextlib.AbstractContextManager[None]:
    """What the interpreter wraps a call of function ``name`` in (see ``RegionCoverage.in_function``)."""
    recorder = _ACTIVE.get()
    if recorder is None or _fake(inputs):
        return contextlib.nullcontext()
    return recorder.in_function(name)


def _fake(inputs: Sequence[Any]) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return any(isinstance(x, FakeTensor) for x in inputs)


def region_label(node_name: str, op_type: str, index: int) -> str:
    """``cond_1/true``: how a region is named in coverage paths."""
    return f"{node_name}/{region_name(op_type, index)}"


def region_paths(graph: Graph | None, prefix: str = "", module: Module | None = None) -> Iterator[tuple[str, str, str]]:
    """``(path, node name, region name)`` of every region in ``graph``, nested ones after their parent; with
    ``module``, then those of each of its private functions, under ``@name/``."""
    for node in graph.nodes if graph is not None else ():
        for index, region in enumerate(node.regions):
            path = prefix + region_label(node.name, node.op_type, index)
            yield path, node.name, region_name(node.op_type, index)
            yield from region_paths(region, path + "/")
    if module is not None:
        for name, function in module.functions.items():
            if not function.public:
                yield from region_paths(function.graph, f"@{name}/")


def coverage_warnings(
    graph: Graph | None, trials_reached: Mapping[str, int], module: Module | None = None
) -> list[str]:
    """A sentence for each region no trial ran, except regions inside one that never ran; with ``module``,
    the regions of its private functions too."""
    warnings: list[str] = []
    unreached: list[str] = []
    for path, node, region in region_paths(graph, module=module):
        if trials_reached.get(path, 0) or any(path.startswith(p + "/") for p in unreached):
            continue
        unreached.append(path)
        where = path.rsplit("/", 2)[0] + "/" if path.count("/") > 1 else ""
        warnings.append(f"{_what(region, where + node)}: give inputs that reach it")
    return warnings


def _what(region: str, node: str) -> str:
    if region in ("true", "false"):
        return f"the {region} branch of {node} was never taken"
    if region == "combine":
        return f"the combine region of {node} never ran (every scan was empty)"
    if region == "cond":
        return f"the cond region of {node} never ran"
    return f"the {region} of {node} never ran"


__all__ = [
    "RegionCoverage",
    "calling",
    "coverage_warnings",
    "entering",
    "record_regions",
    "recording_regions",
    "region_label",
    "region_paths",
]
