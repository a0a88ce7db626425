"""hoist-weights: move computations that depend only on weights into the init graph.

Like TVM's LiftTransformParams. A pure node whose operands are all weights or results of hoisted nodes
(a transpose, permute, reshape or dtype cast of a weight, a constant subexpression) moves to the module's
init graph, which runs once when weights are bound. It runs on each function; functions that hoist the same
computation of the same weights share one derived weight. The init graph's weights are the source weights;
its outputs are named after the derived weights they produce. The main graph reads each hoisted result
that a remaining node (or a graph output) needs as a new ``Weight`` of kind ``derived``, named
``<source weight>.<op>`` (``fc.weight.t``). Source weights that the main graph no longer reads leave it
(they stay in ``init.weights``). Nodes with no operands (``arange``, ``full``) are not hoisted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch_ir.ir.graph import Graph, Node, Value, Weight
from torch_ir.ir.types import TensorType
from torch_ir.ops import op_info, op_name
from torch_ir.passes.base import Pass, PassContext, PassResult
from torch_ir.passes.registry import register_pass


@register_pass
@dataclass(frozen=True)
class HoistWeights(Pass):
    """Move computations that depend only on weights into the init graph (derived weights)."""

    name: ClassVar[str] = "hoist-weights"
    uses_torch: ClassVar[bool] = False
    scope: ClassVar[str] = "function"
    regions: ClassVar[str] = "does not enter: work inside regions stays there, and region ops are never hoisted"

    min_numel: int = 0
    """Only hoist nodes whose results have at least this many elements (0: hoist every one)."""

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        hoisted: list[Node] = []
        inside: set[int] = set()
        pure: dict[str, bool] = {}
        functions = ctx.module.functions.values() if ctx.module is not None else ()
        mutable = {
            u.target for g in (graph, *(f.graph for f in functions)) for u in g.state_updates if u.kind != "input"
        }
        for node in graph.nodes:
            inputs = node.inputs
            if not inputs or not node.outputs:
                continue
            if not all((isinstance(v, Weight) and v.name not in mutable) or id(v) in inside for v in inputs):
                continue
            ok = pure.get(node.op_type)
            if ok is None:
                ok = pure[node.op_type] = op_info(node.op_type).pure
            if not ok or not all(self._big_enough(v) for v in node.outputs):
                continue
            hoisted.append(node)
            inside.update(id(v) for v in node.outputs)
        if not hoisted:
            return PassResult(graph, False)
        _Hoister(graph).hoist(hoisted, inside)
        return PassResult(graph, True)

    def _big_enough(self, value: Value) -> bool:
        t = value.type
        if not isinstance(t, TensorType) or not t.is_static:
            return False
        return self.min_numel <= 0 or (t.numel or 0) >= self.min_numel


class _Hoister:
    """Copies the hoisted nodes into the init graph and rewires the main graph."""

    def __init__(self, graph: Graph):
        self.graph = graph
        if graph.init is None:
            graph.init = Graph()
        self.init = graph.init
        self.env: dict[int, Value] = {}
        self.stem: dict[int, str] = {}
        self.taken = set(graph.weights) | set(self.init.weights)
        self.known: dict[Any, Node] = {self.key(n.op_type, n.attrs, n.args): n for n in self.init.nodes}
        """What the init graph computes already (another function hoisted it): reused, not copied again."""

    @staticmethod
    def key(op_type: str, attrs: dict[str, Any], args: list[Any]) -> Any:
        return (
            op_type,
            repr(attrs),
            repr([[id(a) for a in arg] if isinstance(arg, list) else id(arg) for arg in args]),
        )

    def init_value(self, value: Value) -> Value:
        mapped = self.env.get(id(value))
        if mapped is not None:
            return mapped
        assert isinstance(value, Weight)
        if value.kind == "derived" and self.init.has_value(value.name):
            mapped = self.init.value(value.name)
        elif value.name in self.init.weights:
            mapped = self.init.weight(value.name)
        else:
            mapped = self.init.add_weight(
                value.name, value.type, value.kind, value.aliases, value.persistent, value.data
            )
        self.env[id(value)] = mapped
        self.stem[id(value)] = value.name
        return mapped

    def map_arg(self, arg: Any) -> Any:
        if isinstance(arg, Value):
            return self.init_value(arg)
        if isinstance(arg, list):
            return [self.init_value(a) if isinstance(a, Value) else a for a in arg]
        return arg

    def hoist(self, hoisted: list[Node], inside: set[int]) -> None:
        graph, init = self.graph, self.init
        outputs = {id(v) for v in graph.live_values()}
        hoisted_ids = {id(n) for n in hoisted}
        frontier: list[Value] = []
        sources: set[int] = set()
        for node in hoisted:
            sources.update(id(v) for v in node.inputs if isinstance(v, Weight))
            args = [self.map_arg(a) for a in node.args]
            first = next(iter(node.inputs))
            stem = f"{self.stem.get(id(first), first.name)}.{op_name(node.op_type)}"
            names = []
            for value in node.outputs:
                needed = id(value) in outputs or any(id(u) not in hoisted_ids for u in graph.users(value))
                if needed:
                    frontier.append(value)
            key = self.key(node.op_type, node.attrs, args)
            copy = self.known.get(key)
            if copy is None or len(copy.outputs) != len(node.outputs):
                for i in range(len(node.outputs)):
                    names.append(self.unique(stem if len(node.outputs) == 1 else f"{stem}.{i}"))
                copy = init.create_node(
                    node.op_type, args, node.attrs, [v.type for v in node.outputs], output_names=names, meta=node.meta
                )
                self.known[key] = copy
            for value, new in zip(node.outputs, copy.outputs):
                self.env[id(value)] = new
                self.stem[id(value)] = new.name
        produced_before = {id(v) for v in init.outputs}
        new_outputs = []
        for value in frontier:
            produced = self.env[id(value)]
            if id(produced) in produced_before and graph.has_weight(produced.name):
                derived = graph.weight(produced.name)  # another function derived it already
            else:
                derived = graph.add_weight(produced.name, value.type, "derived")
                new_outputs.append(produced)
                produced_before.add(id(produced))
            graph.replace_all_uses_with(value, derived)
        init.set_outputs([*init.outputs, *new_outputs])
        for node in reversed(hoisted):
            graph.erase(node)
        for weight in list(graph.weights.values()):
            if id(weight) in sources and id(weight) not in outputs and not graph.table.reader(weight, graph):
                graph.remove_weight(weight)

    def unique(self, base: str) -> str:
        name, counter = base, 0
        while name in self.taken or self.init.has_value(name):
            counter += 1
            name = f"{base}_{counter}"
        self.taken.add(name)
        return name
