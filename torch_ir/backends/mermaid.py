"""The Mermaid backend: a flowchart of an IR, grouped by module hierarchy, with repeated blocks folded.

Ops are rectangles labelled with the op and its result type; graph inputs are stadiums, outputs
parallelograms, weights cylinders, collapsed modules subroutine boxes and folded repeats hexagons.
Edges carry the tensor type. Nodes are grouped into subgraphs by ``node.meta["module_stack"]``. The
regions of control-flow ops (cond, while_loop, scan, map) are nested subgraphs (``mermaid_regions``).

- ``depth=N`` collapses every module deeper than N levels into one box (``depth=0``: top-level modules are
  boxes; None: no limit).
- ``max_nodes`` keeps the diagram readable: deeper levels collapse until it fits (a comment says so), and
  as a last resort the ops past the limit are cut and replaced by one "N more ops" node.
- ``fold_repeats`` folds sequential runs of sibling modules into one box marked ``xN``: modules whose
  subgraphs are structurally identical (same op types, attributes, types and internal edges, whatever their
  names) and where each one feeds the next (the decoder layers of an LLM). Siblings that do not feed each
  other (``q_proj``, ``k_proj``, ``v_proj``) are never folded. Ops that CSE shared between the layers
  (computed once in the first layer, read by all) do not stop a run from folding; they are drawn in it.
  Nor does an op that CSE merged into one outside the run (the first layer of an LLM's decode step reads
  the cache position its parent computed, where the other layers compute their own): ops that read only
  values from outside their module are compared as a set, one module's within the next one's.
- State (the buffers a graph updates: an LLM's KV cache) is drawn as state, not as a weight, and each
  write-back (``update @key_cache_0 = ...``) is drawn as an ``update`` node fed by what computes it.
- ``expand_folded`` draws each folded run as a subgraph holding its first module, expanded, as the
  representative of all N (the edges between one repetition and the next are left out).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jinja2

from torch_ir.backends.templating import load_template
from torch_ir.ir.graph import Graph, Node, StateUpdate, Value, Weight
from torch_ir.ir.module import IR

DEFAULT_MAX_NODES = 120
"""The default limit on displayed nodes (ops, boxes, inputs, outputs and weights)."""

MAX_INIT_NODES = 60
"""An init graph with more ops than this is left out of the diagram (a comment says so)."""

MERMAID_MAX_EDGES = 500
"""Mermaid refuses diagrams with more edges than this (its ``maxEdges`` default)."""

SHAPES: dict[str, tuple[str, str]] = {
    "op": ('["', '"]'),
    "input": ('(["', '"])'),
    "output": ('[/"', '"/]'),
    "weight": ('[("', '")]'),
    "state": ('[("', '")]'),
    "update": ('[\\"', '"/]'),
    "module": ('[["', '"]]'),
    "repeat": ('{{"', '"}}'),
    "more": ('>"', '"]'),
}
"""Mermaid shape delimiters per kind of displayed node (labels are always quoted)."""

CLASS_DEFS: dict[str, str] = {
    "op": "fill:#eef3ff,stroke:#4a6fa5,color:#111",
    "input": "fill:#e3f6e3,stroke:#2e7d32,color:#111",
    "output": "fill:#fdecea,stroke:#c62828,color:#111",
    "weight": "fill:#fff8e1,stroke:#b28704,color:#111",
    "state": "fill:#fce4ec,stroke:#ad1457,color:#111",
    "update": "fill:#fce4ec,stroke:#ad1457,color:#111,stroke-dasharray:3",
    "module": "fill:#ede7f6,stroke:#5e35b1,color:#111",
    "repeat": "fill:#e0f7fa,stroke:#00838f,color:#111,stroke-width:2px",
    "more": "fill:#f5f5f5,stroke:#9e9e9e,color:#555,stroke-dasharray:4",
}

_ESCAPES = {"&": "#amp;", "#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "`": "#96;", "\n": " ", "\r": " "}


def escape_label(text: str) -> str:
    """Make ``text`` safe inside a quoted Mermaid label (entity codes for quotes, #, <, >, &, backticks)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def _lines(*parts: str) -> str:
    return "<br/>".join(escape_label(p) for p in parts if p)


@dataclass(eq=False)
class _Scope:
    """One module instance: its path, class, child scopes and the nodes it produced."""

    path: str
    cls: str
    level: int
    parent: _Scope | None = None
    children: dict[str, _Scope] = field(default_factory=dict)
    direct: list[Node] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)

    @property
    def short_cls(self) -> str:
        return self.cls.rsplit(".", 1)[-1]


@dataclass
class _Item:
    id: str
    kind: str
    label: str


@dataclass
class _Block:
    id: str
    label: str
    items: list[_Item] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)


@dataclass
class _Edge:
    src: str
    dst: str
    label: str


@dataclass
class _Plan:
    """What one layout shows: items at top level, nested blocks, which unit each node maps to."""

    items: list[_Item] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)
    unit: dict[Node, str] = field(default_factory=dict)
    block_of_unit: dict[str, _Block | None] = field(default_factory=dict)
    units: list[str] = field(default_factory=list)
    folds: int = 0
    member: dict[Node, tuple[int, int]] = field(default_factory=dict)

    def count(self) -> int:
        return len(self.units)

    def repeats(self, node: Node) -> bool:
        """Whether ``node`` belongs to a repetition (not the first) of an expanded fold: drawn through its
        representative, its weights are not drawn."""
        member = self.member.get(node)
        return member is not None and member[1] > 0

    def crosses(self, producer: Node, consumer: Node) -> bool:
        """Whether the edge links two repetitions of one expanded fold (left out: the representative
        stands for every repetition)."""
        a, b = self.member.get(producer), self.member.get(consumer)
        return a is not None and b is not None and a[0] == b[0] and a[1] != b[1]


@dataclass(eq=False)
class _Fold:
    """A sequential run of identical sibling modules; ``cores`` are their nodes less the CSE-shared ones and
    those that read only values from outside, position by position alike; ``ops`` the ops of one module."""

    members: list[_Scope]
    cores: list[list[Node]]
    ops: int


def render_mermaid(
    ir_or_graph: IR | Graph,
    *,
    depth: int | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    fold_repeats: bool = True,
    expand_folded: bool = False,
    direction: str = "TD",
    max_edges: int = MERMAID_MAX_EDGES,
) -> str:
    """A Mermaid flowchart of the graph (see the module docstring for the options)."""
    graph = ir_or_graph.graph if isinstance(ir_or_graph, IR) else ir_or_graph
    if direction not in ("TD", "TB", "LR", "RL", "BT"):
        raise ValueError(f"direction must be one of TD, TB, LR, RL, BT, got {direction!r}")
    if max_nodes < 1 or max_edges < 1:
        raise ValueError(f"max_nodes and max_edges must be positive, got {max_nodes}, {max_edges}")
    root = _build_scopes(graph)
    folds = _find_folds(graph, root) if fold_repeats else {}
    max_level = _max_level(root)
    comments = [f"model: {escape_label(graph.meta.get('model', 'model'))}, {len(graph)} ops"]
    expand = expand_folded and fold_repeats

    plan = _layout(graph, root, depth, folds, expand)

    def fits(p: _Plan) -> bool:
        nodes, edges = _measure(graph, p, set(p.units))
        return nodes <= max_nodes and edges <= max_edges

    if not fits(plan):
        start = min(depth if depth is not None else max_level, max_level) - 1
        for d in range(start, -1, -1):
            plan = _layout(graph, root, d, folds, expand)
            if fits(plan):
                comments.append(f"max_nodes={max_nodes}: modules deeper than {d} level(s) are collapsed to fit")
                break
        else:
            plan = _layout(graph, root, 0, folds, expand)
            comments.append(f"max_nodes={max_nodes}: every module collapsed, and ops past the limit cut")
    elif depth is not None:
        comments.append(f"depth={depth}: modules deeper than {depth} level(s) are collapsed")
    if plan.folds:
        comments.append(f"{plan.folds} sequential run(s) of structurally identical modules folded")
        if expand:
            comments.append("each folded run is drawn once: its first module stands for all")
    if graph.init is not None and len(graph.init) > MAX_INIT_NODES:
        comments.append(f"init graph ({len(graph.init)} ops, more than {MAX_INIT_NODES}) not shown")
    kept = _select(graph, plan, max_nodes, max_edges)
    return _emit(graph, plan, kept, max_nodes, comments, direction)


def _shown_weights(graph: Graph, plan: _Plan, kept: set[str]) -> dict[Weight, set[str]]:
    """Weights read by displayed op nodes (boxes absorb the weights they read), with their readers."""
    users: dict[Weight, set[str]] = {}
    for node in graph.nodes:
        uid = plan.unit[node]
        if uid in kept and uid.startswith("n") and not plan.repeats(node):
            for value in node.inputs:
                if isinstance(value, Weight):
                    users.setdefault(value, set()).add(uid)
    return users


def _unit_sources(graph: Graph, plan: _Plan) -> dict[str, list[str]]:
    """For each unit, the distinct sources of its incoming edges (units, ``in:NAME`` or ``w:NAME``)."""
    sources: dict[str, dict[str, None]] = {u: {} for u in plan.units}
    for node in graph.nodes:
        dst = plan.unit[node]
        for value in node.inputs:
            if value.producer is not None:
                if plan.crosses(value.producer, node):
                    continue
                src = plan.unit[value.producer]
            elif isinstance(value, Weight):
                if not dst.startswith("n") or plan.repeats(node):
                    continue
                src = f"w:{value.name}"
            else:
                src = f"in:{value.name}"
            if src != dst:
                sources[dst][src] = None
    return {u: list(s) for u, s in sources.items()}


def _measure(graph: Graph, plan: _Plan, kept: set[str]) -> tuple[int, int]:
    """(displayed nodes, edges) of a plan restricted to the ``kept`` units."""
    sources = _unit_sources(graph, plan)
    edges = sum(1 for u in kept for s in sources[u] if s in kept or s[:2] in ("w:", "in"))
    updates = len(_update_groups(graph, plan.unit))
    nodes = len(kept) + len(_shown_weights(graph, plan, kept)) + len(graph.inputs) + len(graph.outputs) + updates
    return nodes, edges + len(graph.outputs) + updates


def _update_groups(graph: Graph, unit: dict[Node, str]) -> dict[str, list[StateUpdate]]:
    """The state updates by what computes their value: a unit (an op, a box), ``in:NAME`` or ``w:NAME``."""
    groups: dict[str, list[StateUpdate]] = {}
    for update in graph.state_updates:
        value = update.value
        if value.producer is not None:
            key = unit[value.producer]
        else:
            key = f"{'w' if isinstance(value, Weight) else 'in'}:{value.name}"
        groups.setdefault(key, []).append(update)
    return groups


def _state_names(graph: Graph) -> set[str]:
    """The weights of ``graph`` that are state: buffers and parameters it writes back (an LLM's KV cache)."""
    return {u.target for u in graph.state_updates if u.kind != "input"}


def _select(graph: Graph, plan: _Plan, max_nodes: int, max_edges: int) -> set[str]:
    """The units to show: all of them if they fit, else the longest prefix (in order) that fits."""
    everything = set(plan.units)
    nodes, edges = _measure(graph, plan, everything)
    if nodes <= max_nodes and edges <= max_edges:
        return everything
    sources = _unit_sources(graph, plan)
    kept: set[str] = set()
    weights: set[str] = set()
    node_count = len(graph.inputs) + len(graph.outputs) + 1
    edge_count = len(graph.outputs)
    for uid in plan.units:
        srcs = [s for s in sources[uid] if s in kept or s[:2] in ("w:", "in")]
        new_weights = {s for s in srcs if s.startswith("w:")} - weights
        if node_count + 1 + len(new_weights) > max_nodes or edge_count + len(srcs) > max_edges:
            break
        kept.add(uid)
        weights |= new_weights
        node_count += 1 + len(new_weights)
        edge_count += len(srcs)
    return kept


# ------------------------------------------------------------------ scopes


def _build_scopes(graph: Graph) -> _Scope:
    root = _Scope("", "", 0)
    for node in graph.nodes:
        scope = root
        root.nodes.append(node)
        for entry in node.meta.get("module_stack") or []:
            path, cls = str(entry[0]), str(entry[1])
            if not path:
                continue
            child = scope.children.get(path)
            if child is None:
                child = scope.children[path] = _Scope(path, cls, scope.level + 1, scope)
            scope = child
            scope.nodes.append(node)
        scope.direct.append(node)
    return root


def _max_level(scope: _Scope) -> int:
    return max([scope.level, *(_max_level(c) for c in scope.children.values())])


def structural_hash(scope_nodes: list[Node], prefix: str) -> str:
    """A hash of a subgraph that ignores names: op types, attrs, types, module classes, internal edges."""
    local = {node: i for i, node in enumerate(scope_nodes)}
    parts = []
    for node in scope_nodes:
        operands: list[tuple[Any, ...]] = []
        for value in node.inputs:
            if value.producer in local:
                operands.append(("l", local[value.producer], value.index))
            elif isinstance(value, Weight):
                name = value.name[len(prefix) :] if value.name.startswith(prefix + ".") else "<ext>"
                operands.append(("w", name, str(value.type)))
            else:
                operands.append(("x", str(value.type)))
        stack = [
            (str(p)[len(prefix) :], str(c))
            for p, c in node.meta.get("module_stack") or []
            if str(p).startswith(prefix + ".")
        ]
        attrs = repr(sorted(node.attrs.items()))
        parts.append((node.op_type, attrs, tuple(str(v.type) for v in node.outputs), tuple(operands), tuple(stack)))
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _find_folds(graph: Graph, root: _Scope) -> dict[_Scope, _Fold]:
    """Sequential runs of sibling scopes with equal structure, keyed by their first scope.

    Equal: the same class and the same ``structural_hash`` once the ops CSE shared between siblings are set
    aside (ops read by a sibling two or more places later, and what they are computed from), and once the
    ops that read only outside values are set aside too; those are compared as multisets, each sibling's
    within the next one's or the other way round (CSE merges such an op of the first sibling into one its
    parent computed). Sequential: each scope of the run reads a value the one before it computed.
    """
    folds: dict[_Scope, _Fold] = {}
    stack = [root]
    while stack:
        scope = stack.pop()
        children = list(scope.children.values())
        cores = _cores(graph, children)
        splits = [_split_boundary(core) for core in cores]
        keys = [(c.cls, structural_hash(body, c.path)) for c, (body, _) in zip(children, splits)]
        i = 0
        while i < len(children):
            j = i + 1
            while (
                j < len(children)
                and keys[j] == keys[i]
                and _nested(splits[j - 1][1], splits[j][1])
                and _feeds(cores[j - 1], cores[j])
            ):
                j += 1
            if j - i >= 2:
                folds[children[i]] = _Fold(children[i:j], [body for body, _ in splits[i:j]], len(cores[j - 1]))
            stack.append(children[i])
            i = j
    return folds


def _split_boundary(core: list[Node]) -> tuple[list[Node], Counter[tuple[Any, ...]]]:
    """``(body, boundary)``: the ops of ``core`` that read a value computed inside it or a weight, and a
    multiset of what the others (ops on values from outside only) compute."""
    inside = set(core)
    body: list[Node] = []
    boundary: Counter[tuple[Any, ...]] = Counter()
    for node in core:
        if node.inputs and not any(v.producer in inside or isinstance(v, Weight) for v in node.inputs):
            key = (node.op_type, repr(sorted(node.attrs.items())), tuple(str(v.type) for v in node.outputs))
            boundary[(*key, tuple(str(v.type) for v in node.inputs))] += 1
        else:
            body.append(node)
    return body, boundary


def _nested(a: Counter[tuple[Any, ...]], b: Counter[tuple[Any, ...]]) -> bool:
    """Whether one multiset holds the other."""
    return not (a - b) or not (b - a)


def _cores(graph: Graph, children: list[_Scope]) -> list[list[Node]]:
    """Each child's nodes less those CSE shared with later siblings: a node read by a sibling at least two
    places later (the next sibling reading a value is ordinary dataflow), with its ancestors in the child."""
    owner = {node: k for k, child in enumerate(children) for node in child.nodes}
    cores = []
    for k, child in enumerate(children):
        inside = set(child.nodes)
        shared: set[Node] = set()
        for node in child.nodes:
            if any(owner.get(user, -1) >= k + 2 for value in node.outputs for user in graph.users(value)):
                shared.add(node)
        todo = list(shared)
        while todo:
            for value in todo.pop().inputs:
                producer = value.producer
                if producer is not None and producer in inside and producer not in shared:
                    shared.add(producer)
                    todo.append(producer)
        cores.append([n for n in child.nodes if n not in shared])
    return cores


def _feeds(before: list[Node], after: list[Node]) -> bool:
    """Whether a node of ``after`` reads a value computed by a node of ``before``."""
    produced = set(before)
    return any(value.producer in produced for node in after for value in node.inputs)


# ------------------------------------------------------------------ layout


def _layout(graph: Graph, root: _Scope, depth: int | None, folds: dict[_Scope, _Fold], expand: bool = False) -> _Plan:
    plan = _Plan()
    counter = [0]

    def new_id(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def add_unit(uid: str, item: _Item, block: _Block | None) -> None:
        (block.items if block else plan.items).append(item)
        plan.block_of_unit[uid] = block
        plan.units.append(uid)

    folded_into: dict[_Scope, _Fold] = {}
    for fold in folds.values():
        for scope in fold.members:
            folded_into[scope] = fold

    def visit(scope: _Scope, block: _Block | None) -> None:
        # direct ops and child scopes, interleaved in order of first appearance
        order: list[tuple[int, object]] = [(graph_index[n], n) for n in scope.direct]
        order += [(graph_index[c.nodes[0]], c) for c in scope.children.values()]
        order.sort(key=lambda t: t[0])
        for _, entry in order:
            if isinstance(entry, Node):
                uid = new_id("n")
                plan.unit[entry] = uid
                add_unit(uid, _Item(uid, "op", _op_label(entry)), block)
                continue
            child = entry
            assert isinstance(child, _Scope)
            fold = folded_into.get(child)
            if fold is not None:
                run = fold.members
                if run[0] is not child:
                    continue
                plan.folds += 1
                span = f"{run[0].path} … {run[-1].path.rsplit('.', 1)[-1]}  x{len(run)}"
                if expand:
                    sub = _Block(new_id("s"), escape_label(f"{span}: {child.short_cls} (the first stands for all)"))
                    (block.blocks if block else plan.blocks).append(sub)
                    visit(child, sub)
                    for k, core in enumerate(fold.cores):
                        for node, representative in zip(core, fold.cores[0]):
                            plan.member[node] = (plan.folds, k)
                            if k:
                                plan.unit[node] = plan.unit[representative]
                    for k, member in enumerate(run):
                        for node in member.nodes:
                            plan.member.setdefault(node, (plan.folds, k))
                            plan.unit.setdefault(node, plan.unit[fold.cores[0][0]])
                    continue
                uid = new_id("f")
                for member in run:
                    for node in member.nodes:
                        plan.unit[node] = uid
                label = _lines(span, f"{run[0].short_cls}, {fold.ops} ops each")
                add_unit(uid, _Item(uid, "repeat", label), block)
            elif depth is not None and child.level > depth:
                uid = new_id("m")
                for node in child.nodes:
                    plan.unit[node] = uid
                label = _lines(f"{child.path}: {child.short_cls}", f"{len(child.nodes)} ops")
                add_unit(uid, _Item(uid, "module", label), block)
            else:
                sub = _Block(new_id("s"), escape_label(f"{child.path}: {child.short_cls}"))
                (block.blocks if block else plan.blocks).append(sub)
                visit(child, sub)

    graph_index = {n: i for i, n in enumerate(graph.nodes)}
    visit(root, None)
    return plan


def _op_label(node: Node) -> str:
    parts = node.op_type.split(".")
    op = parts[1] if len(parts) >= 3 else node.op_type
    types = [str(v.type) for v in node.outputs]
    shown = types[0] if len(types) == 1 else f"({', '.join(types[:3])}{', …' if len(types) > 3 else ''})"
    return _lines(op, shown if types else "")


def _type_label(value: Value) -> str:
    return escape_label(str(value.type) if value.type is not None else "?")


# ------------------------------------------------------------------ emit


def _emit(graph: Graph, plan: _Plan, kept_units: set[str], max_nodes: int, comments: list[str], direction: str) -> str:
    hidden_ops = sum(1 for n in graph.nodes if plan.unit[n] not in kept_units)
    if hidden_ops:
        _prune(plan.items, plan.blocks, kept_units)
    top_items: list[_Item] = []
    classes: dict[str, list[str]] = {}
    source: dict[Value, str] = {}
    for i, value in enumerate(graph.inputs):
        iid = f"i{i}"
        top_items.append(_Item(iid, "input", _lines(value.name, str(value.type))))
        source[value] = iid
    for node in graph.nodes:
        if plan.unit[node] in kept_units:
            for value in node.outputs:
                source[value] = plan.unit[node]
    more_id = None
    if hidden_ops:
        more_id = "more1"
        comments.append(f"{hidden_ops} ops past max_nodes={max_nodes} are not shown")
        plan.items.append(_Item(more_id, "more", escape_label(f"… {hidden_ops} more ops not shown")))
    state = _state_names(graph)
    for k, (weight, users) in enumerate(_shown_weights(graph, plan, kept_units).items()):
        wid = f"w{k}"
        if weight.name in state:
            item = _Item(wid, "state", _lines(weight.name, str(weight.type), "state"))
        else:
            item = _Item(wid, "weight", _lines(weight.name, str(weight.type)))
        source[weight] = wid
        blocks = {id(plan.block_of_unit.get(u)): plan.block_of_unit.get(u) for u in users}
        target = next(iter(blocks.values())) if len(blocks) == 1 else None
        (target.items if target else top_items).append(item)
    edges: dict[tuple[str, str], list[str]] = {}
    for node in graph.nodes:
        dst = plan.unit[node]
        if dst not in kept_units:
            continue
        for value in node.inputs:
            src = source.get(value)
            if src is None or src == dst or (value.producer is not None and plan.crosses(value.producer, node)):
                continue
            edges.setdefault((src, dst), [])
            label = _type_label(value)
            if label not in edges[(src, dst)]:
                edges[(src, dst)].append(label)
    if graph.init is not None and len(graph.init) <= MAX_INIT_NODES:
        plan.blocks.append(_init_block(graph.init, source, edges))
    if any(node.regions for node in graph.nodes):  # control flow: regions as nested subgraphs
        from torch_ir.backends.mermaid_regions import region_blocks

        plan.blocks.extend(region_blocks(graph, plan.unit, kept_units, edges))
    output_items: list[_Item] = []
    for i, value in enumerate(graph.outputs):
        oid = f"o{i}"
        output_items.append(_Item(oid, "output", _lines(f"output {i}", str(value.type))))
        src = source.get(value) or more_id
        if src is not None:
            edges.setdefault((src, oid), []).append(_type_label(value))
    for k, (key, updates) in enumerate(_update_groups(graph, plan.unit).items()):
        uid = f"u{k}"
        output_items.append(_Item(uid, "update", _update_label(updates)))
        src = key if key in kept_units else source.get(updates[0].value) or more_id
        if src is not None:
            edges.setdefault((src, uid), []).append(_type_label(updates[0].value))
    edge_list = [
        _Edge(src, dst, labels[0] + (f" +{len(labels) - 1}" if len(labels) > 1 else ""))
        for (src, dst), labels in edges.items()
    ]
    all_items = [*top_items, *plan.items, *output_items]
    for item in _walk_items(all_items, plan.blocks):
        classes.setdefault(item.kind, []).append(item.id)
    used = [(k, v) for k, v in CLASS_DEFS.items() if k in classes]
    return _template().render(
        direction=direction,
        comments=comments,
        class_defs=used,
        shapes=SHAPES,
        items=all_items,
        blocks=plan.blocks,
        edges=edge_list,
        classes=[(k, v) for k, v in classes.items()],
    )


def _update_label(updates: list[StateUpdate]) -> str:
    """``update @key_cache_0``; for many (a folded run of layers) the first ones and how many in all."""
    refs = [u.target_ref for u in updates]
    shown = ", ".join(refs[:3]) + (f", … ({len(refs)} in all)" if len(refs) > 3 else "")
    return _lines(f"update {shown}", str(updates[0].value.type) if len(updates) == 1 else "state write-back")


def _init_block(init: Graph, main_source: dict[Value, str], edges: dict[tuple[str, str], list[str]]) -> _Block:
    """The init graph as one subgraph: its source weights and ops, each result linked to the derived weight
    of the main graph it becomes (where that weight is drawn)."""
    block = _Block("init0", escape_label("init graph: runs once when weights are bound"))
    source: dict[Value, str] = {}
    for k, weight in enumerate(init.weights.values()):
        source[weight] = f"iw{k}"
        block.items.append(_Item(f"iw{k}", "weight", _lines(weight.name, str(weight.type))))
    for k, node in enumerate(init.nodes):
        nid = f"in{k}"
        block.items.append(_Item(nid, "op", _op_label(node)))
        for value in node.inputs:
            if value in source:
                edges.setdefault((source[value], nid), []).append(_type_label(value))
        for value in node.outputs:
            source[value] = nid
    derived = {value.name: value for value in main_source if isinstance(value, Weight)}
    for value in init.outputs:
        target = derived.get(value.name)
        if value in source and target is not None:
            edges.setdefault((source[value], main_source[target]), []).append(_type_label(value))
    return block


def _prune(items: list[_Item], blocks: list[_Block], keep: set[str]) -> None:
    items[:] = [i for i in items if i.id in keep]
    for block in blocks:
        _prune(block.items, block.blocks, keep)
    blocks[:] = [b for b in blocks if b.items or b.blocks]


def _walk_items(items: list[_Item], blocks: list[_Block]):
    yield from items
    for block in blocks:
        yield from _walk_items(block.items, block.blocks)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    return load_template("mermaid.mmd.j2")


__all__ = ["DEFAULT_MAX_NODES", "escape_label", "render_mermaid", "structural_hash"]
