"""The Markdown backend: one report per model (summary, statistics, weights, pipeline, stages, diagram).

The diagram is inlined in a ```` ```mermaid ```` fence, so the report renders on GitHub as it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import jinja2

from torch_ir.analysis.statistics import IRStatistics, compute_statistics, format_bytes, format_count, held_text
from torch_ir.backends.mermaid import DEFAULT_MAX_NODES, render_mermaid
from torch_ir.backends.templating import load_template
from torch_ir.ir.graph import Graph
from torch_ir.ir.module import IR
from torch_ir.serde.files import atomic_write_text

MAX_TABLE_ROWS = 50
"""Tables longer than this end with a "... N more" row."""


def render_markdown(
    ir: IR | Graph,
    *,
    depth: int | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    fold_repeats: bool = True,
    expand_folded: bool = False,
    include_mermaid: bool = True,
    bindings: Mapping[str, int] | None = None,
    max_table_rows: int = MAX_TABLE_ROWS,
    title: str | None = None,
    notes: Sequence[tuple[str, str]] = (),
    statistics: IRStatistics | None = None,
    module_functions: Sequence[str] = (),
) -> str:
    """The Markdown report of ``ir``.

    ``depth``/``max_nodes``/``fold_repeats``/``expand_folded`` go to ``render_mermaid``; ``bindings`` to the statistics;
    ``notes`` are extra ``(heading, markdown)`` sections placed after the summary (the test runner puts its
    verification results there). ``module_functions``: for the report of one entry of a program
    (``entry_ir``), the functions of the whole module, which every pass of its log ran on.
    """
    if isinstance(ir, Graph):
        ir = IR(ir)
    if ir.is_program:
        return _render_program(ir, depth=depth, max_nodes=max_nodes, fold_repeats=fold_repeats, title=title)
    graph = ir.graph
    stats = statistics or compute_statistics(ir, bindings=bindings)
    rows = max(1, max_table_rows)
    weights = list(graph.weights.values())
    ops = list(stats.op_histogram.items())
    flops_by_op = stats.flops_by_op
    diagram = ""
    if include_mermaid:
        diagram = render_mermaid(
            ir, depth=depth, max_nodes=max_nodes, fold_repeats=fold_repeats, expand_folded=expand_folded
        )
    text = _template().render(
        title=title or f"{ir.name}: torch-ir report",
        description=_description(graph),
        summary=_summary(ir, stats, module_functions),
        notes=list(notes) + _control_flow_note(stats),
        inputs=graph.inputs,
        outputs=graph.outputs,
        ops=[(op, n, _flops(flops_by_op.get(op, 0))) for op, n in ops[:rows]],
        ops_more=max(0, len(ops) - rows),
        by_dtype=list(stats.weights_by_dtype.items()),
        by_module=list(stats.params_by_top_module.items())[:rows],
        uncounted=stats.uncounted_ops,
        weights=[
            {"name": w.name, "type": str(w.type), "kind": w.kind, "aliases": w.aliases, "persistent": w.persistent}
            for w in weights[:rows]
        ],
        weights_more=max(0, len(weights) - rows),
        weights_note=_weights_note(stats),
        passes=[_pass_row(entry) for entry in ir.pass_log],
        stages=[
            {
                "name": s.name,
                "seconds": f"{s.seconds:.3f} s",
                "rss": format_bytes(s.rss_delta_bytes),
                "peak": format_bytes(s.peak_rss_bytes),
            }
            for s in ir.stages.stages
        ],
        mermaid=diagram,
    )
    return re.sub(r"\n{3,}", "\n\n", text)


def _render_program(ir: IR, *, title: str | None, **mermaid: Any) -> str:
    """A program's report: its figures and declared state, then one section per entry (each a full report
    of that entry graph, its headings one level down)."""
    from torch_ir.analysis.statistics import format_program_statistics, program_statistics

    lines = [
        f"# {title or f'{ir.name}: torch-ir report'}",
        "",
        f"A program of {len(ir.entries)} entries ({', '.join(ir.entries)}) over one weight table and "
        f"{len(ir.state)} declared state tensors.",
        "",
        "```",
        format_program_statistics(program_statistics(ir)),
        "```",
        "",
        "## State",
        "",
        "| state | type | init |",
        "|---|---|---|",
        *(f"| `{s.name}` | `{s.type}` | {s.init} |" for s in ir.state.values()),
    ]
    for name in ir.entries:
        body = render_markdown(
            entry_ir(ir, name), title=f"Entry {name}", module_functions=tuple(ir.functions), **mermaid
        )
        lines += ["", *(("#" + line) if line.startswith("#") else line for line in body.splitlines())]
    return "\n".join(lines) + "\n"


def entry_ir(module: IR, name: str) -> IR:
    """One entry of a program as an IR of its own, for its report: the entry's graph with the private functions
    its calls may use, the extraction's stages, and the module's pass log (one row per pass over every
    function; the rows of a file of version 5 name the entry each was about, and only this entry's are kept).
    """
    single = IR(module.entry(name), module.stages)
    for other, function in module.functions.items():
        if not function.public:
            single.add_function(other, function.graph, public=False)
    single.pass_log = [row for row in module.pass_log if row.get("entry", name) == name]
    return single


def write_report(ir: IR | Graph, path: str | os.PathLike[str], **options: Any) -> None:
    """Write ``render_markdown(ir, **options)`` to ``path`` atomically."""
    atomic_write_text(path, render_markdown(ir, **options))


def _description(graph: Graph) -> str:
    parts = [f"Extracted on `{graph.meta.get('device', '?')}`"]
    if graph.symbols:
        parts.append("symbolic dims " + ", ".join(f"`{k}` in {v}" for k, v in graph.symbols.items()))
    if graph.init is not None:
        parts.append(f"an init graph of {len(graph.init)} ops")
    return "; ".join(parts) + "."


def _summary(ir: IR, stats: IRStatistics, module_functions: Sequence[str]) -> list[tuple[str, str]]:
    flops = format_count(stats.flops)
    if stats.flops is None and stats.symbols:
        flops += " (symbolic dims; pass bindings)"
    return [
        ("model", ir.name),
        ("ops", f"{stats.num_nodes} ({len(stats.op_histogram)} op types)"),
        ("edges", str(stats.num_edges)),
        ("inputs / outputs", f"{stats.num_inputs} / {stats.num_outputs}"),
        ("weights", f"{stats.num_weights} in the graph; the model's own: {format_bytes(stats.weight_bytes)}"),
        ("parameters", f"{stats.parameter_count:,} ({format_bytes(stats.parameter_bytes)})"),
        ("buffers / constants", f"{stats.buffer_count:,} / {stats.constant_count:,} elements"),
        *(
            [("after the init graph", held_text(stats.derived_count, stats.derived_bytes, stats.held_bytes))]
            if stats.derived_count
            else []
        ),
        ("FLOPs / MACs", f"{flops} / {format_count(stats.macs)}"),
        (
            "activations",
            f"{format_bytes(stats.activation_bytes)} total, {format_bytes(stats.peak_activation_bytes)} peak live",
        ),
        ("depth", f"{stats.depth} ops on the longest path"),
        ("passes run", _passes_run(ir, module_functions)),
        ("extraction time", f"{ir.stages.total_seconds:.3f} s" if ir.stages.stages else "not recorded"),
    ]


def _passes_run(ir: IR, module_functions: Sequence[str]) -> str:
    if not ir.pass_log:
        return "0" if ir.stages.stages else "none recorded"
    names = [str(entry.get("pass", "?")) for entry in ir.pass_log]
    shown = ", ".join(names[:8]) + (f", … {len(names) - 8} more" if len(names) > 8 else "")
    if module_functions and not any("entry" in row for row in ir.pass_log):  # rows of version 5 name an entry
        return f"{len(names)} ({shown}), each on every function of the module ({', '.join(module_functions)})"
    return f"{len(names)} ({shown})"


def _control_flow_note(stats: IRStatistics) -> list[tuple[str, str]]:
    """A "Control flow" section listing the region ops with their FLOPs per iteration and in total."""
    if not stats.region_ops:
        return []
    lines = [
        "| node | op | FLOPs per iteration | trip count | FLOPs |",
        "|---|---|---:|---:|---:|",
    ]
    for entry in stats.region_ops:
        trips = entry["trip_count"]
        if trips is None:
            trips = "data-dependent" if entry["op"].endswith("while_loop") else "symbolic"
        lines.append(
            f"| `{_cell(entry['node'])}` | `{entry['op']}` | {_flops(entry['flops_per_iteration'])} | "
            f"{trips} | {_flops(entry['flops'])} |"
        )
    lines.append("")
    lines.append(
        "A cond counts its larger branch; a while_loop's trip count depends on the data; a nested op's figures "
        "are per run of the region that holds it."
    )
    return [("Control flow", "\n".join(lines))]


def _weights_note(stats: IRStatistics) -> str:
    if not stats.tied_weights:
        return "No tied weights."
    tied = "; ".join(" = ".join(f"`{n}`" for n in names) for names in stats.tied_weights)
    return f"Tied (one storage, counted once): {tied}."


def _pass_row(entry: Mapping[str, Any]) -> dict[str, str]:
    def change(before: Any, after: Any) -> str:
        if before is None and after is None:
            return ""
        return f"{before} → {after}" if before != after else str(after)

    seconds = entry.get("seconds")
    return {
        "name": str(entry.get("pass", "?")),
        "seconds": f"{seconds * 1000:.1f} ms" if isinstance(seconds, (int, float)) else "",
        "modified": "yes" if entry.get("modified") else "no",
        "nodes": change(entry.get("nodes_before"), entry.get("nodes_after")),
        "weights": change(entry.get("weights_before"), entry.get("weights_after")),
    }


def _flops(value: int | None) -> str:
    return "unknown" if value is None else ("" if value == 0 else format_count(value))


def _cell(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "'")


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    return load_template("report.md.j2", {"cell": _cell})


__all__ = ["MAX_TABLE_ROWS", "render_markdown", "write_report"]
