"""Node data for Model Explorer: cost figures from the statistics, and the per-node error of a verify report.

Each overlay is one ``ModelNodeData``: per graph id (as ``convert.bodies`` names the graphs), a value per
node id. The cost overlays come from ``torch_ir.analysis.statistics``: FLOPs (a region op counts its
regions), bytes moved (distinct operands read plus results written), output bytes, and the bytes of
activations live at each node. The verify overlays read the JSON of ``torch-ir verify --json``
(``VerificationReport.to_dict``): the error of every value the divergence search compared
(``node_errors``), green within tolerance, red beyond it, and the first divergence in dark red.

A function's body is drawn once, so its overlays are per call and aggregated over call sites: its cost
figures are those of one call (every call of a body runs the same shapes), and its verify figures are the
worst error any call site showed (green only where every site was within tolerance). A call node carries
its whole body at its own site: the body's FLOPs, bytes moved and peak live bytes of one call, and the
worst error inside it at that call; so a graph's figures add up to the module's, a body counted once per
call (``statistics.call_figures``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

from torch_ir.analysis.statistics import (
    CallFigures,
    call_figures,
    evaluate_bytes,
    live_bytes,
    node_cost,
    node_traffic,
)
from torch_ir.backends.model_explorer.convert import bodies, region_graph_id
from torch_ir.backends.model_explorer.schema import GradientItem, GraphNodeData, ModelNodeData, NodeDataResult
from torch_ir.errors import SerializationError, VerificationError
from torch_ir.ir.graph import Graph
from torch_ir.ir.module import IR

COST_GRADIENT = (GradientItem(0, "#ffffff"), GradientItem(1, "#ff7043"))
"""Cost overlays: white for the graph's smallest value, deep orange for its largest."""

WITHIN_TOLERANCE = "#a5d6a7"
"""A value the divergence search found within tolerance (green)."""
BEYOND_TOLERANCE = "#ef9a9a"
"""A value beyond tolerance that is not the first divergence (light red)."""
FIRST_DIVERGENCE = "#c62828"
"""The first node whose value differs from eager PyTorch (red, white text)."""

COST_OVERLAYS = {
    "flops": "FLOPs",
    "bytes": "bytes moved (read + written)",
    "output_bytes": "output bytes",
    "live_bytes": "live activation bytes",
}
"""The cost overlays: file stem -> the name Model Explorer shows."""

VERIFY_OVERLAYS = {"max_abs_error": "verify: max abs error", "max_rel_error": "verify: max rel error"}
"""The verify overlays: file stem -> the name Model Explorer shows."""


def cost_overlays(ir: IR, bindings: Mapping[str, int] | None = None) -> dict[str, ModelNodeData]:
    """The cost overlays of every graph of ``ir``, by file stem (``flops``, ``bytes`` ...).

    A node whose figure depends on a symbolic dim that ``bindings`` leaves unbound has no value (Model
    Explorer leaves it uncoloured); so does a node of an op without a cost model in the FLOPs overlay. A
    function's graph shows one call's figures; each call node the figures of its callee's whole body.
    """
    binds = dict(bindings or {})
    calls = call_figures(ir, binds)
    out: dict[str, ModelNodeData] = {stem: {} for stem in COST_OVERLAYS}
    for graph_id, graph in bodies(ir):
        figures = _cost_figures(graph, binds, calls)
        for stem, values in figures.items():
            out[stem][graph_id] = GraphNodeData(
                COST_OVERLAYS[stem], {k: NodeDataResult(v) for k, v in values.items()}, list(COST_GRADIENT)
            )
    return out


def _cost_figures(graph: Graph, bindings: dict[str, int], calls: dict[str, CallFigures]) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {stem: {} for stem in COST_OVERLAYS}
    live = live_bytes(graph, bindings, calls) or {}
    for node in graph.nodes:
        flops, _, known = node_cost(node, bindings, calls)
        if flops is not None and known:
            figures["flops"][node.name] = flops
        traffic = node_traffic(node, bindings, calls)
        if traffic is not None:
            figures["bytes"][node.name] = sum(traffic)
        sizes = [evaluate_bytes(v.type, bindings) for v in node.outputs]
        if all(size is not None for size in sizes):
            figures["output_bytes"][node.name] = sum(s or 0 for s in sizes)
        if node in live:
            figures["live_bytes"][node.name] = live[node]
    return figures


def verify_overlays(ir: IR, report: Any, source: str = "the verify report") -> dict[str, ModelNodeData]:
    """The verify overlays of ``report`` (the JSON of ``torch-ir verify --json``) on ``ir``, by file stem.

    Every compared value colours its node; the first divergence is marked even when the report has no
    ``node_errors`` (a report of an older torch-ir, or of ``verify --generate``). A value a call computed
    colours the node of the callee's body (the worst over its call sites) and the call node (the worst in
    its body at that call); the first divergence inside a call marks both. A report that names a node
    ``ir`` does not have was made from another IR: ``VerificationError``.
    """
    entry, errors, first = _read_report(ir, report, source)
    known = {graph_id: {n.name for n in graph.nodes} for graph_id, graph in bodies(ir)}
    worst: dict[tuple[str, str], dict[str, Any]] = {}
    for error in errors:
        for key in _locate(known, entry, error, source):
            previous = worst.get(key)
            if previous is None:
                worst[key] = dict(error)
            else:
                previous["max_abs"] = max(previous["max_abs"], error["max_abs"])
                previous["max_rel"] = max(previous["max_rel"], error["max_rel"])
                previous["passed"] = previous["passed"] and error["passed"]
    first_keys: list[tuple[str, str]] = []
    if first is not None:
        first_keys = _locate(known, entry, first, source)
        for key in first_keys:
            if key not in worst:  # a report without node_errors: the divergence alone
                worst[key] = {field: _number(first.get(field)) for field in ("max_abs", "max_rel")}
                worst[key]["passed"] = False
    out: dict[str, ModelNodeData] = {stem: {} for stem in VERIFY_OVERLAYS}
    for (graph_id, node), error in worst.items():
        if (graph_id, node) in first_keys:
            colour, text = FIRST_DIVERGENCE, "#ffffff"
        else:
            colour, text = (WITHIN_TOLERANCE if error["passed"] else BEYOND_TOLERANCE), None
        for stem, field in (("max_abs_error", "max_abs"), ("max_rel_error", "max_rel")):
            data = out[stem].setdefault(graph_id, GraphNodeData(VERIFY_OVERLAYS[stem]))
            data.results[node] = NodeDataResult(_json_number(error[field]), colour, text)
    return out


def _read_report(ir: IR, report: Any, source: str) -> tuple[str, list[dict[str, Any]], dict[str, Any] | None]:
    """``(entry, node errors, first divergence)`` of a verify report, checked for the fields the overlay reads."""
    if not isinstance(report, dict) or "passed" not in report or "divergence" not in report:
        raise SerializationError(f"{source} is not a torch-ir verify report (the JSON of `torch-ir verify --json`)")
    entry = next(iter(ir.entries))
    steps, failed_step = report.get("steps"), report.get("first_failure")
    if isinstance(steps, list) and isinstance(failed_step, int) and 0 <= failed_step < len(steps):
        entry = str(steps[failed_step].get("entry", entry))  # verify --generate: the entry of the failing step
    if entry not in ir.entries:
        raise VerificationError(f"{source} is of entry {entry!r}; this IR has {', '.join(ir.entries)}")
    errors = report.get("node_errors") or []
    if not isinstance(errors, list):
        raise SerializationError(f"{source}: node_errors must be a list, got {type(errors).__name__}")
    checked = [_checked_error(e, f"{source}: node_errors[{i}]") for i, e in enumerate(errors)]
    first = report["divergence"]
    if first is not None and not (isinstance(first, dict) and isinstance(first.get("node"), str)):
        raise SerializationError(f"{source}: divergence must name a node, got {first!r}")
    return entry, checked, first


def _checked_error(error: Any, where: str) -> dict[str, Any]:
    if not isinstance(error, dict) or not isinstance(error.get("node"), str):
        raise SerializationError(f"{where}: expected an object with a node name, got {error!r}")
    out = {"node": error["node"], "region": str(error.get("region") or "")}
    for field in ("max_abs", "max_rel"):
        value = error.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SerializationError(f"{where}: {field} must be a number, got {value!r}")
        out[field] = float(value)
    out["passed"] = bool(error.get("passed"))
    for field in CALL_FIELDS:
        value = error.get(field, "")
        if not isinstance(value, str):
            raise SerializationError(f"{where}: {field} must be a string, got {value!r}")
        out[field] = value
    return out


CALL_FIELDS = ("call", "function", "function_node")
"""The fields of a report entry for a node a call put there: the call, its function, the body's node."""


def _locate(known: dict[str, set[str]], entry: str, error: Mapping[str, Any], source: str) -> list[tuple[str, str]]:
    """``(graph id, node id)`` of each node a report entry colours: the node it names (``cond/true/linear``
    with region ``cond/true/``); for a node a call put there, the node of the callee's body and the call."""
    region = str(error.get("region") or "")
    name = str(error["node"])
    if region and name.startswith(region):
        name = name[len(region) :]
    call, function, function_node = (str(error.get(field) or "") for field in CALL_FIELDS)
    if call and function and function_node:  # in the callee's body (its region op renamed), and the call
        inner = region.split("/", 1)[1] if region else ""
        body = (region_graph_id(function, f"{function_node}/{inner}"), name) if region else (function, function_node)
        keys = [body, (entry, call)]
    else:
        keys = [(region_graph_id(entry, region), name)]
    for graph_id, node in keys:
        if node not in known.get(graph_id, ()):
            where = f"graph {graph_id}" if graph_id != entry else f"entry {entry}"
            raise VerificationError(
                f"{source} names node {error['node']!r}, which {where} of this IR does not have "
                f"(as {node!r}): was the report made from another IR (or before a pass renamed its nodes)?"
            )
    return keys


def _number(value: Any) -> float:
    """A report's error figure, or inf where it gives none (a divergence without figures)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.inf


def _json_number(value: float) -> float:
    """``value``, with inf and NaN (which JSON cannot hold) as the largest float."""
    return value if math.isfinite(value) else sys.float_info.max


__all__ = [
    "BEYOND_TOLERANCE",
    "CALL_FIELDS",
    "COST_GRADIENT",
    "COST_OVERLAYS",
    "FIRST_DIVERGENCE",
    "VERIFY_OVERLAYS",
    "WITHIN_TOLERANCE",
    "cost_overlays",
    "verify_overlays",
]
