"""``summarize(ir)``: the few lines ``torch-ir extract`` prints and ``IR.summary()`` returns.

Node and weight counts, parameter count and bytes (tied storages counted once), inputs and outputs, the
time and memory of each stage (``ir.stages``) and of each pass (``ir.pass_log``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from torch_ir.analysis.statistics import (
    format_bytes,
    format_count,
    held_text,
    held_weight_figures,
    model_weights,
    unique_weights,
)
from torch_ir.ir.graph import Graph, Weight
from torch_ir.ir.types import TensorType


def summarize(ir: Any, top_ops: int = 5) -> str:
    """A short text summary of ``ir`` (an ``IR``; a program gets one line per entry)."""
    if getattr(ir, "is_program", False):
        return summarize_program(ir)
    graph: Graph = ir.graph
    nodes = graph.nodes
    histogram = Counter(n.op_type for n in nodes)
    totals = weight_totals(graph)
    lines = [
        f"model       {ir.name}",
        f"nodes       {len(nodes)} ({len(histogram)} op types"
        + (f"; top: {', '.join(f'{_short(op)} {n}' for op, n in histogram.most_common(top_ops))})" if nodes else ")"),
        f"inputs      {_values(graph.inputs)}",
        f"outputs     {_values(graph.outputs)}",
        f"weights     {len(graph.weights)} ({totals['unique']} unique storages"
        + (f", {totals['tied']} tied" if totals["tied"] else "")
        + ")",
        f"parameters  {format_count(totals['parameter_count'])} ({format_bytes(totals['parameter_bytes'])})",
    ]
    if totals["buffer_count"] or totals["constant_count"]:
        lines.append(
            f"buffers     {format_count(totals['buffer_count'])} ({format_bytes(totals['buffer_bytes'])}), "
            f"constants {format_count(totals['constant_count'])} ({format_bytes(totals['constant_bytes'])})"
        )
    if graph.symbols:
        lines.append(
            "symbols     "
            + ", ".join(f"{k} in [{r.min}, {r.max if r.max is not None else 'inf'}]" for k, r in graph.symbols.items())
        )
    if graph.init is not None:
        lines.append(f"init graph  {len(graph.init.nodes)} nodes")
    if totals["derived_count"]:
        lines.append("held        " + held_text(totals["derived_count"], totals["derived_bytes"], totals["held_bytes"]))
    stages = getattr(ir, "stages", None)
    if stages is not None and stages.stages:
        lines.append("stages:")
        lines.extend("  " + row for row in str(stages).splitlines())
    pass_log = getattr(ir, "pass_log", None) or []
    if pass_log:
        lines.append("passes:")
        lines.extend("  " + _pass_row(entry) for entry in pass_log)
    return "\n".join(lines)


def summarize_program(ir: Any) -> str:
    """The summary of a program: per entry nodes, FLOPs and bytes per call, the state, the weights once."""
    from torch_ir.analysis.statistics import format_program_statistics, program_statistics

    lines = [format_program_statistics(program_statistics(ir))]
    for name, graph in ir.entries.items():
        lines.append(f"  {name:<9} inputs {_values(graph.inputs)} -> {_values(graph.outputs)}")
    stages = getattr(ir, "stages", None)
    if stages is not None and stages.stages:
        lines.append("stages:")
        lines.extend("  " + row for row in str(stages).splitlines())
    return "\n".join(lines)


def weight_totals(graph: Graph) -> dict[str, int]:
    """Element and byte counts per weight kind of the model's own weights (``model_weights``: the init
    graph's originals included, derived tensors not), each storage counted once; plus what a backend
    holds after the init graph (``held_weight_figures``). ``unique`` and ``tied`` count the graph's own
    weight storages."""
    totals = dict.fromkeys(
        (
            "parameter_count",
            "parameter_bytes",
            "buffer_count",
            "buffer_bytes",
            "constant_count",
            "constant_bytes",
            "unique",
            "tied",
        ),
        0,
    )
    totals.update(held_weight_figures(graph))
    for weight in unique_weights(graph):  # the graph's own storages, as the weights line counts them
        totals["unique"] += 1
        totals["tied"] += bool(weight.aliases)
    for weight in model_weights(graph):
        kind = weight.kind if weight.kind in ("parameter", "buffer") else "constant"
        numel, nbytes = _size(weight)
        totals[f"{kind}_count"] += numel
        totals[f"{kind}_bytes"] += nbytes
    return totals


def _size(weight: Weight) -> tuple[int, int]:
    type_ = weight.type
    if not isinstance(type_, TensorType) or type_.numel is None:
        return 0, 0
    return int(type_.numel), int(type_.nbytes or 0)


def _values(values: Any, limit: int = 4) -> str:
    values = list(values)
    shown = [f"%{v.name}: {v.type}" for v in values[:limit]]
    if len(values) > limit:
        shown.append(f"... {len(values) - limit} more")
    return ", ".join(shown) or "none"


def _short(op_type: str) -> str:
    parts = op_type.split(".")
    return parts[1] if len(parts) >= 3 and parts[0] == "aten" else op_type


def _pass_row(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    name = entry.get("pass") or entry.get("name") or "?"
    row = f"{name!s:<24}"
    seconds = entry.get("seconds", entry.get("time"))
    if isinstance(seconds, (int, float)):
        row += f"{seconds:>9.3f}s"
    rss = entry.get("rss_delta_bytes")
    if isinstance(rss, int):
        row += f"{rss / 2**20:>10.1f}MB"
    if "modified" in entry:
        row += "  modified" if entry["modified"] else "  unchanged"
    for key in ("nodes_before", "nodes_after"):
        if key in entry:
            row += f"  {key.replace('_', ' ')} {entry[key]}"
    return row


__all__ = ["summarize", "weight_totals"]
