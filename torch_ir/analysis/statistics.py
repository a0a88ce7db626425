"""Statistics of an IR: op histogram, sizes, parameters, FLOPs/MACs, activation memory, depth.

``compute_statistics(ir)`` reads the graph only (no weight values). Conventions, so figures can be checked
by hand: a multiply-accumulate (MAC) counts as 2 FLOPs; a bias adds one FLOP per output element;
elementwise ops cost one FLOP per output element; softmax and normalizations cost a few per element;
data movement (views, copies, indexing) costs nothing. Each op's cost model is a trait in the op registry
(``torch_ir.ops.cost``; a custom op gets one with ``register_op(..., cost=fn)``). Shapes with symbolic dims give
``None`` FLOPs unless ``bindings`` (``{"seq": 128}``) say what each symbol is. Control-flow ops are costed
from their regions (``analysis/region_cost``): a cond as its larger branch, scan and map per iteration
times their static trip count, a while_loop as unknown in total; ``region_ops`` lists each with its
per-iteration figure. A call (``func.call``) of a function of the module costs what one run of the
function's body costs (``call_figures``), so a body called 80 times counts 80 times in the totals; the
peak activation memory at a call is what is live around it plus the body's own peak.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from torch_ir.errors import IRError
from torch_ir.ir.calls import callee_name, calls_in, is_call
from torch_ir.ir.graph import Graph, Node, Value, Weight
from torch_ir.ir.module import IR
from torch_ir.ir.symbolic import evaluate_dim
from torch_ir.ir.types import ITEMSIZE, TensorType
from torch_ir.ops import op_info
from torch_ir.ops import op_name as op_short_name


@dataclass
class IRStatistics:
    """Figures of one IR; ``to_dict()`` gives plain JSON-typed data.

    ``flops``/``macs`` are None when some op's count depends on an unbound symbolic dim;
    ``flops_by_op`` totals per op type (None where unknown); ``uncounted_ops`` lists op types this module
    has no cost model for (counted as 0). Parameter, buffer and constant figures and ``weight_bytes``
    count the model's own weights (``model_weights``: init-graph originals included, tied storages once);
    ``derived_count``/``derived_bytes`` are what the init graph computes and ``held_bytes`` what a backend
    holds after running it (``held_weight_figures``).
    """

    model: str
    num_nodes: int
    num_edges: int
    num_op_edges: int
    num_inputs: int
    num_outputs: int
    num_weights: int
    op_histogram: dict[str, int]
    parameter_count: int
    parameter_bytes: int
    buffer_count: int
    buffer_bytes: int
    constant_count: int
    constant_bytes: int
    weight_bytes: int
    derived_count: int
    derived_bytes: int
    held_bytes: int
    weights_by_dtype: dict[str, dict[str, int]]
    tied_weights: list[list[str]]
    params_by_top_module: dict[str, int]
    params_by_module: dict[str, int]
    flops: int | None
    macs: int | None
    flops_by_op: dict[str, int | None]
    uncounted_ops: list[str]
    activation_bytes: int | None
    peak_activation_bytes: int | None
    depth: int
    symbols: list[str] = field(default_factory=list)
    bindings: dict[str, int] = field(default_factory=dict)
    region_ops: list[dict[str, Any]] = field(default_factory=list)
    """Control-flow ops at any depth: FLOPs per iteration, trip count and total (see analysis/region_cost)."""

    def to_dict(self) -> dict[str, Any]:
        """The statistics as a plain dict (JSON-typed)."""
        return asdict(self)


def compute_statistics(ir_or_graph: IR | Graph, *, bindings: Mapping[str, int] | None = None) -> IRStatistics:
    """Compute ``IRStatistics`` of an IR or graph; ``bindings`` give values to symbolic dims."""
    graph = ir_or_graph.graph if isinstance(ir_or_graph, IR) else ir_or_graph
    binds = dict(bindings or {})
    calls = call_figures(ir_or_graph, binds) if isinstance(ir_or_graph, IR) else None
    nodes = graph.nodes
    histogram = Counter(n.op_type for n in nodes)
    num_edges = sum(len(n.inputs) for n in nodes)
    num_op_edges = sum(1 for n in nodes for v in n.inputs if v.producer is not None)
    weights = _weight_figures(graph)
    flops, macs, by_op, uncounted = _cost(nodes, binds, calls)
    activation, peak = _activation_memory(graph, binds, calls)
    return IRStatistics(
        model=str(graph.meta.get("model", "model")),
        num_nodes=len(nodes),
        num_edges=num_edges,
        num_op_edges=num_op_edges,
        num_inputs=len(graph.inputs),
        num_outputs=len(graph.outputs),
        num_weights=len(graph.weights),
        op_histogram=dict(sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
        flops=flops,
        macs=macs,
        flops_by_op=by_op,
        uncounted_ops=uncounted,
        activation_bytes=activation,
        peak_activation_bytes=peak,
        depth=_depth(nodes),
        symbols=sorted(graph.symbols),
        bindings=binds,
        region_ops=_region_ops(graph, binds, calls),
        **weights,
    )


def _region_ops(
    graph: Graph, bindings: Mapping[str, int], calls: Mapping[str, CallFigures] | None
) -> list[dict[str, Any]]:
    if not any(node.regions for node in graph.nodes):
        return []
    from torch_ir.analysis.region_cost import region_op_figures

    return region_op_figures(graph, bindings, _node_cost_with(calls))


# ---------------------------------------------------------------- weights


def unique_weights(graph: Graph) -> list[Weight]:
    """The weights with tied storages counted once (a weight whose alias was already seen is skipped)."""
    seen: set[str] = set()
    out = []
    for weight in graph.weights.values():
        if weight.name in seen:
            continue
        seen.update(weight.names)
        out.append(weight)
    return out


def model_weights(graph: Graph) -> list[Weight]:
    """The model's own weights, whatever passes ran: the main graph's weights that are not derived, the
    init graph's (the originals ``hoist-weights`` moved there), and those ``eliminate-dead-nodes`` removed
    because nothing read them (``graph.meta["unused_weight_types"]``); tied storages once."""
    seen: set[str] = set()
    out: list[Weight] = []
    sources = [w for w in graph.weights.values() if w.kind != "derived"]
    if graph.init is not None:
        sources.extend(graph.init.weights.values())
    sources.extend(_removed_weights(graph))
    for weight in sources:
        if weight.name in seen:
            continue
        seen.update(weight.names)
        out.append(weight)
    return out


def _removed_weights(graph: Graph) -> list[Weight]:
    recorded = graph.meta.get("unused_weight_types")
    if not isinstance(recorded, dict):
        return []
    out = []
    for name, info in recorded.items():
        try:
            type_ = TensorType(tuple(info["shape"]), info["dtype"])
            out.append(Weight(name, type_, info.get("kind", "parameter"), info.get("aliases") or ()))
        except (IRError, KeyError, TypeError):  # a hand-edited entry: not counted
            continue
    return out


def held_weight_figures(graph: Graph) -> dict[str, int]:
    """What a backend holds after running the init graph, apart from what the model has.

    ``derived_count`` / ``derived_bytes``: the tensors the init graph computes; ``held_bytes``: the
    originals the main graph still reads plus the derived tensors (0 derived: the model's own weights).
    """
    derived_count = derived_bytes = held = 0
    for weight in unique_weights(graph):
        numel, size = _static_size(weight)
        held += size
        if weight.kind == "derived":
            derived_count += numel
            derived_bytes += size
    return {"derived_count": derived_count, "derived_bytes": derived_bytes, "held_bytes": held}


def _weight_figures(graph: Graph) -> dict[str, Any]:
    counts = {"parameter": 0, "buffer": 0, "constant": 0}
    nbytes = {"parameter": 0, "buffer": 0, "constant": 0}
    by_dtype: dict[str, dict[str, int]] = {}
    by_top: dict[str, int] = {}
    by_module: dict[str, int] = {}
    total_bytes = 0
    for weight in model_weights(graph):
        numel, size = _static_size(weight)
        kind = weight.kind if weight.kind in ("parameter", "buffer") else "constant"
        counts[kind] += numel
        nbytes[kind] += size
        total_bytes += size
        entry = by_dtype.setdefault(str(weight.dtype), {"count": 0, "bytes": 0})
        entry["count"] += numel
        entry["bytes"] += size
        if weight.kind == "parameter":
            top = weight.name.split(".", 1)[0]
            module = weight.name.rsplit(".", 1)[0] if "." in weight.name else ""
            by_top[top] = by_top.get(top, 0) + numel
            by_module[module] = by_module.get(module, 0) + numel
    tied = [list(w.names) for w in model_weights(graph) if w.aliases]
    unique_tied: list[list[str]] = []
    for names in tied:
        if not any(set(names) & set(t) for t in unique_tied):
            unique_tied.append(names)
    return {
        "parameter_count": counts["parameter"],
        "parameter_bytes": nbytes["parameter"],
        "buffer_count": counts["buffer"],
        "buffer_bytes": nbytes["buffer"],
        "constant_count": counts["constant"],
        "constant_bytes": nbytes["constant"],
        "weight_bytes": total_bytes,
        **held_weight_figures(graph),
        "weights_by_dtype": dict(sorted(by_dtype.items())),
        "tied_weights": unique_tied,
        "params_by_top_module": by_top,
        "params_by_module": by_module,
    }


def _static_size(value: Value) -> tuple[int, int]:
    type_ = value.type
    if not isinstance(type_, TensorType) or type_.numel is None:
        return 0, 0
    return type_.numel, type_.nbytes or 0


# ------------------------------------------------------------------- FLOPs


def node_cost(
    node: Node, bindings: Mapping[str, int] | None = None, calls: Mapping[str, CallFigures] | None = None
) -> tuple[int | None, int | None, bool]:
    """``(flops, macs, known)`` of one node; None figures when a symbolic dim is unbound.

    ``known`` is False for op types without a cost model (then the figures are 0). The model is the op's
    ``cost`` trait in the op registry (``torch_ir.ops``; ``register_op(..., cost=fn)`` for a custom op).
    A call costs one run of its callee as ``calls`` (``call_figures``) gives it; without them it is
    uncounted.
    """
    binds = bindings or {}
    if is_call(node):
        figures = None if calls is None else calls.get(callee_name(node))
        return (0, 0, False) if figures is None else (figures.flops, figures.macs, figures.known)
    if node.regions:  # control flow: costed from its regions (analysis/region_cost.py)
        from torch_ir.analysis.region_cost import region_op_cost

        return region_op_cost(node, binds, _node_cost_with(calls))
    model = op_info(node.op_type).cost
    if model is not None and model.free:
        return 0, 0, True
    try:
        ins = [_shape(v, binds) for v in node.inputs]
        outs = [_shape(v, binds) for v in node.outputs]
        if model is None:
            return 0, 0, False
        flops, macs = model(ins, outs, node.attrs)
        return flops, macs, True
    except _Unknown:
        return None, None, True
    except Exception as exc:
        if model is not None and model.custom:
            raise IRError(f"node {node.name}: the cost function of {node.op_type} failed: {exc}") from exc
        if isinstance(exc, (IndexError, TypeError)):  # the shapes do not fit the model: uncounted
            return 0, 0, False
        raise


def _node_cost_with(calls: Mapping[str, CallFigures] | None) -> Any:
    """``node_cost`` as region costing calls it (``node, bindings``), with ``calls`` for the calls inside."""
    return node_cost if calls is None else functools.partial(node_cost, calls=calls)


class _Unknown(Exception):
    """A dim is symbolic and unbound."""


def _shape(value: Value, bindings: Mapping[str, int]) -> tuple[int, ...]:
    shape = value.shape or ()
    return tuple(_dim(d, bindings) for d in shape)


def _dim(dim: int | str, bindings: Mapping[str, int]) -> int:
    if isinstance(dim, int):
        return dim
    value = evaluate_dim(dim, bindings)
    if value is None:
        raise _Unknown(dim)
    return value


def _cost(
    nodes: Iterable[Node], bindings: Mapping[str, int], calls: Mapping[str, CallFigures] | None = None
) -> tuple[int | None, int | None, dict, list[str]]:
    flops: int | None = 0
    macs: int | None = 0
    by_op: dict[str, int | None] = {}
    uncounted: set[str] = set()

    def count(op_type: str, f: int | None) -> None:
        if f != 0 or op_type not in by_op:
            prev = by_op.get(op_type, 0)
            by_op[op_type] = None if prev is None or f is None else prev + f

    for node in nodes:
        f, m, known = node_cost(node, bindings, calls)
        flops = None if flops is None or f is None else flops + f
        macs = None if macs is None or m is None else macs + m
        figures = _callee_figures(node, calls)
        if figures is None:
            count(node.op_type, f)
            if not known:
                uncounted.add(node.op_type)
            continue
        for op_type, op_flops in figures.flops_by_op.items():  # a call counts as the ops of its body
            count(op_type, op_flops)
        uncounted.update(figures.uncounted)
    by_op = {k: v for k, v in by_op.items() if v != 0}
    return flops, macs, dict(sorted(by_op.items(), key=lambda kv: -(kv[1] or 0))), sorted(uncounted)


# ---------------------------------------------------------------- activations


def _nbytes(value: Value, bindings: Mapping[str, int]) -> int:
    if not isinstance(value.type, TensorType):
        return 0
    return math.prod(_shape(value, bindings)) * int(ITEMSIZE[value.type.dtype])


def _activation_memory(
    graph: Graph, bindings: Mapping[str, int], calls: Mapping[str, CallFigures] | None = None
) -> tuple[int | None, int | None]:
    """Total bytes of node results (a call: its callee's), and the peak bytes live when each value is freed
    after its last use."""
    try:
        total = sum(_result_bytes(n, bindings, calls) for n in graph.nodes)
        live = _live_bytes(graph, bindings, calls)
    except _Unknown:
        return None, None
    return total, max(live.values(), default=0)


def _result_bytes(node: Node, bindings: Mapping[str, int], calls: Mapping[str, CallFigures] | None) -> int:
    figures = _callee_figures(node, calls)
    if figures is None:
        return sum(_nbytes(v, bindings) for v in node.outputs)
    if figures.activation_bytes is None:
        raise _Unknown(callee_name(node))
    return figures.activation_bytes


def _callee_figures(node: Node, calls: Mapping[str, CallFigures] | None) -> CallFigures | None:
    return calls.get(callee_name(node)) if calls is not None and is_call(node) else None


def live_bytes(
    graph: Graph, bindings: Mapping[str, int] | None = None, calls: Mapping[str, CallFigures] | None = None
) -> dict[Node, int] | None:
    """The bytes of node results live at each node: after it allocates its results, before any is freed.

    Each value is freed after its last use; results of view ops alias their first operand and add nothing
    (an aliased buffer lives until the last use of any of its views); graph outputs are never freed. At a
    call, what is live around it plus the peak of its callee's body (``calls``, from ``call_figures``). The
    peak activation memory of ``compute_statistics`` is the largest of these. None when a symbolic dim is
    unbound.
    """
    try:
        return _live_bytes(graph, dict(bindings or {}), calls)
    except _Unknown:
        return None


def _live_bytes(
    graph: Graph, bindings: Mapping[str, int], calls: Mapping[str, CallFigures] | None = None
) -> dict[Node, int]:
    nodes = graph.nodes
    root: dict[Value, Value] = {}
    for node in nodes:
        aliases = op_info(node.op_type).view and node.inputs
        for value in node.outputs:
            base = node.inputs[0] if aliases else value
            root[value] = root.get(base, base)
    last_use: dict[Value, float] = {}
    for i, node in enumerate(nodes):
        for value in node.inputs:
            origin = root.get(value)
            if origin is not None:
                last_use[origin] = i
    for value in graph.live_values():
        if value in root:
            last_use[root[value]] = math.inf
    live = 0
    at: dict[Node, int] = {}
    allocated: set[Value] = set()
    for i, node in enumerate(nodes):
        results = 0
        for value in node.outputs:
            if root[value] is value:
                results += _nbytes(value, bindings)
                allocated.add(value)
        live += results
        at[node] = live
        figures = _callee_figures(node, calls)
        if figures is not None:  # inside the call: what was live before it, and the body's own peak
            if figures.peak_bytes is None:
                raise _Unknown(callee_name(node))
            at[node] = live - results + figures.peak_bytes
        for value in node.outputs:
            if root[value] is value and last_use.get(value, i) <= i:
                live -= _nbytes(value, bindings)
                allocated.discard(value)
        for value in {root[v] for v in node.inputs if v in root}:
            if value in allocated and last_use.get(value) == i:
                live -= _nbytes(value, bindings)
                allocated.discard(value)
    return at


def node_traffic(
    node: Node, bindings: Mapping[str, int] | None = None, calls: Mapping[str, CallFigures] | None = None
) -> tuple[int, int] | None:
    """``(bytes read, bytes written)`` of one node: its distinct tensor operands and its results.

    Ops free in their cost model (views, ``clone``, ``cat`` ...: ``op_info(op_type).cost.free``) move
    nothing a backend must pay for: ``(0, 0)``. A call moves what the ops of one run of its callee move
    (``calls``), all of it counted as read. None when a symbolic dim is unbound.
    """
    figures = _callee_figures(node, calls)
    if figures is not None:
        return None if figures.traffic is None else (figures.traffic, 0)
    model = op_info(node.op_type).cost
    if model is not None and model.free:
        return 0, 0
    binds = dict(bindings or {})
    try:
        read = sum(_nbytes(v, binds) for v in dict.fromkeys(node.inputs))
        written = sum(_nbytes(v, binds) for v in node.outputs)
    except _Unknown:
        return None
    return read, written


# ------------------------------------------------------------------ calls


@dataclass(frozen=True)
class CallFigures:
    """What one call of a function costs, from its body: FLOPs and MACs (None where a symbolic dim is
    unbound), FLOPs per op type, the op types without a cost model, the bytes its ops move, the bytes of
    the results its ops make, and the peak bytes live inside it (None where unknown)."""

    flops: int | None
    macs: int | None
    flops_by_op: dict[str, int | None]
    uncounted: tuple[str, ...]
    traffic: int | None
    activation_bytes: int | None
    peak_bytes: int | None

    @property
    def known(self) -> bool:
        """Whether every op of the body has a cost model."""
        return not self.uncounted


def call_figures(ir: IR, bindings: Mapping[str, int] | None = None) -> dict[str, CallFigures]:
    """``CallFigures`` of every function of ``ir`` that some call runs, by name.

    A body is costed once, after the functions it calls; a call the body makes costs what its callee does.
    A call inside a recursion of calls (which the verifier rejects) is uncounted.
    """
    graphs = {name: function.graph for name, function in ir.functions.items()}
    called = {callee_name(node) for graph in graphs.values() for node in calls_in(graph)}
    binds = dict(bindings or {})
    figures: dict[str, CallFigures] = {}
    visiting: set[str] = set()

    def visit(name: str) -> None:
        visiting.add(name)
        for node in calls_in(graphs[name]):
            callee = callee_name(node)
            if callee in graphs and callee not in figures and callee not in visiting:
                visit(callee)
        figures[name] = _body_figures(graphs[name], binds, figures)
        visiting.discard(name)

    for name in graphs:
        if name in called and name not in figures:
            visit(name)
    return figures


def _body_figures(graph: Graph, bindings: Mapping[str, int], calls: Mapping[str, CallFigures]) -> CallFigures:
    flops, macs, by_op, uncounted = _cost(graph.nodes, bindings, calls)
    moved: list[tuple[int, int] | None] = [node_traffic(node, bindings, calls) for node in graph.nodes]
    traffic = None if any(t is None for t in moved) else sum(sum(t) for t in moved if t is not None)
    activation, peak = _activation_memory(graph, bindings, calls)
    return CallFigures(flops, macs, by_op, tuple(uncounted), traffic, activation, peak)


def _depth(nodes: tuple[Node, ...]) -> int:
    depth: dict[Node, int] = {}
    for node in nodes:
        preds = [depth[v.producer] for v in node.inputs if v.producer is not None and v.producer in depth]
        depth[node] = 1 + max(preds, default=0)
    return max(depth.values(), default=0)


def format_statistics(stats: IRStatistics, top: int = 15) -> str:
    """The statistics as a few lines of text (what ``torch-ir report --stats`` prints)."""
    lines = [
        f"model            {stats.model}",
        f"nodes            {stats.num_nodes} ({len(stats.op_histogram)} op types), edges {stats.num_edges}",
        f"inputs/outputs   {stats.num_inputs} / {stats.num_outputs}",
        f"weights          {stats.num_weights} in the graph; the model's own: {format_bytes(stats.weight_bytes)}",
        f"parameters       {format_count(stats.parameter_count)} ({format_bytes(stats.parameter_bytes)})",
        f"buffers          {format_count(stats.buffer_count)} ({format_bytes(stats.buffer_bytes)}), "
        f"constants {format_count(stats.constant_count)} ({format_bytes(stats.constant_bytes)})",
        f"FLOPs / MACs     {format_count(stats.flops)} / {format_count(stats.macs)}",
        f"activations      {format_bytes(stats.activation_bytes)} total, "
        f"{format_bytes(stats.peak_activation_bytes)} peak live",
        f"depth            {stats.depth}",
    ]
    if stats.derived_count:
        lines.insert(6, f"after init graph {held_text(stats.derived_count, stats.derived_bytes, stats.held_bytes)}")
    if stats.symbols:
        lines.append(f"symbols          {', '.join(stats.symbols)} (bindings: {stats.bindings or 'none'})")
    lines.append("top ops:")
    for op, count in list(stats.op_histogram.items())[:top]:
        lines.append(f"  {count:>6}  {op}")
    if stats.region_ops:
        lines.append("control flow (FLOPs per iteration x trip count):")
        for entry in stats.region_ops:
            trips = "?" if entry["trip_count"] is None else entry["trip_count"]
            lines.append(
                f"  {entry['node']} ({entry['op']}): {format_count(entry['flops_per_iteration'])} x {trips}"
                f" = {format_count(entry['flops'])}"
            )
    return "\n".join(lines)


def held_text(derived_count: int, derived_bytes: int, held_bytes: int) -> str:
    """``derived 1.2M (4.6 MiB); a backend holds 9.1 MiB`` for the summary lines."""
    return (
        f"derived {format_count(derived_count)} ({format_bytes(derived_bytes)}); "
        f"a backend holds {format_bytes(held_bytes)} (originals still read + derived)"
    )


def format_count(n: int | float | None) -> str:
    """1234567 -> ``1.23M``; None -> ``unknown``."""
    if n is None:
        return "unknown"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def format_bytes(n: int | None) -> str:
    """2048 -> ``2.0 KiB``; None -> ``unknown``."""
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


__all__ = [
    "IRStatistics",
    "compute_statistics",
    "format_bytes",
    "format_count",
    "format_statistics",
    "held_text",
    "held_weight_figures",
    "CallFigures",
    "call_figures",
    "live_bytes",
    "model_weights",
    "node_cost",
    "node_traffic",
    "op_short_name",
    "unique_weights",
]


@dataclass
class EntryFigures:
    """One entry of a program: its size, and the compute and memory traffic of one call."""

    entry: str
    num_nodes: int
    flops: int | None
    bytes_read: int | None
    bindings: dict[str, int]


@dataclass
class ProgramStatistics:
    """Figures of a program (an LLM's prefill + decode): per entry, the declared state, the weights once.

    ``state_bytes`` is the KV cache at its full length (the declared state); ``weight_bytes`` counts every
    parameter and buffer the entries read once, whichever entries read it (state excluded). For ``decode``
    one call is one token, so its flops and bytes are per token.
    """

    model: str
    entries: list[EntryFigures]
    state_bytes: int
    weight_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """The statistics as a plain dict (JSON-typed)."""
        return asdict(self)


def program_statistics(ir: IR, *, bindings: Mapping[str, int] | None = None) -> ProgramStatistics:
    """``ProgramStatistics`` of a program; symbolic dims (``seq`` of prefill) take ``bindings`` or, when not
    given, their largest allowed value."""
    state_bytes = sum(int(spec.type.nbytes or 0) for spec in ir.state.values())
    weights: dict[str, int] = {}
    entries: list[EntryFigures] = []
    for name, graph in ir.entries.items():
        binds = {s: r.max if r.max is not None else r.min for s, r in graph.symbols.items()}
        binds.update(bindings or {})
        flops, _, _, _ = _cost(graph.nodes, binds, call_figures(ir, binds))
        read = 0
        for weight in graph.weights.values():
            size = evaluate_bytes(weight.type, binds)
            if weight.kind != "derived" and weight.name not in ir.state:
                weights.setdefault(weight.name, size or 0)
            read += size or 0
        read += sum(evaluate_bytes(v.type, binds) or 0 for v in graph.inputs)
        entries.append(EntryFigures(name, len(graph.nodes), flops, read, binds))
    model = str(ir.graph.meta.get("model", "model"))
    return ProgramStatistics(model, entries, state_bytes, sum(weights.values()))


def evaluate_bytes(type_: Any, bindings: Mapping[str, int]) -> int | None:
    """The byte size of a tensor type with its symbolic dims bound, or None when one is not."""
    if not isinstance(type_, TensorType):
        return None
    numel = 1
    for dim in type_.shape:
        value = evaluate_dim(dim, bindings)
        if value is None:
            return None
        numel *= value
    return int(numel * ITEMSIZE[type_.dtype])


def format_program_statistics(stats: ProgramStatistics) -> str:
    """A few lines: per entry nodes, flops and bytes per call; the KV cache and the weights once."""
    lines = [f"program     {stats.model}: {', '.join(e.entry for e in stats.entries)}"]
    for e in stats.entries:
        at = ", ".join(f"{k}={v}" for k, v in e.bindings.items())
        per = " per token" if e.entry == "decode" else " per call"
        lines.append(
            f"  {e.entry:<9} {e.num_nodes} nodes, {format_count(e.flops)} FLOPs{per}, "
            f"{format_bytes(e.bytes_read)} read{per}" + (f" (at {at})" if at else "")
        )
    lines.append(f"state       {format_bytes(stats.state_bytes)} (KV cache at full length)")
    lines.append(f"weights     {format_bytes(stats.weight_bytes)} (read by the entries, counted once)")
    return "\n".join(lines)
