"""inline: replace each call by a copy of the function it calls, and drop private functions no call uses.

The callee's nodes are copied before the call, its inputs bound to the call's operands, and the call's
results replaced by what the copies compute; then the call goes. A call that kept the names its block had
(``meta["inline"]``, written by ``outline-repeated-blocks`` and by extraction with functions) gets them
back, and its nodes' module paths are moved from the function's module (``model.layers.0``) to the call's
(``model.layers.3``), so ``inline(outline(ir))`` is the IR outlined. Other calls get fresh names. Calls
inside regions and inside other functions are inlined too (a body is inlined after the calls inside it),
so the result has no calls at all unless ``callee`` names one function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch_ir.errors import PassError
from torch_ir.ir.calls import CALL_OP, callee_name, calls_in, find_recursion, inline_names, site_values
from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ir.module import Module
from torch_ir.passes.base import Pass, PassContext, PassResult
from torch_ir.passes.registry import register_pass


@register_pass
@dataclass(frozen=True)
class Inline(Pass):
    """Replace calls by the bodies of the functions they call (the flat IR back)."""

    name: ClassVar[str] = "inline"
    scope: ClassVar[str] = "module"
    uses_torch: ClassVar[bool] = False
    regions: ClassVar[str] = "every region: calls inside regions are inlined too"

    callee: str = ""
    """Inline only the calls of this function ('' for every call)."""
    keep_functions: bool = False
    """Keep private functions that no call uses any more."""

    def run(self, module: Module, ctx: PassContext) -> PassResult:
        functions = module.functions
        if self.callee and self.callee not in functions:
            raise PassError(f"inline: no function {self.callee!r}; the module's functions: {', '.join(functions)}")
        cycle = find_recursion({n: f.graph for n, f in functions.items()})
        if cycle:
            raise PassError(f"inline: the calls recurse ({' -> '.join(cycle)}); a recursive call cannot be inlined")
        modified = False
        for name in _callees_first(module):
            for graph in _graphs(module.function(name).graph):
                for node in list(graph.nodes):
                    if node.op_type == CALL_OP and (not self.callee or callee_name(node) == self.callee):
                        inline_call(graph, node, module.function(callee_name(node)).graph)
                        modified = True
        if not self.keep_functions:
            used = {callee_name(n) for f in module.functions.values() for n in calls_in(f.graph)}
            for name, function in module.functions.items():
                if not function.public and name not in used:
                    module.remove_function(name)
                    modified = True
        return PassResult(module, modified)


def _callees_first(module: Module) -> list[str]:
    """Function names, each after the functions it calls (so a body is flat before it is copied)."""
    order: list[str] = []
    graphs = {n: f.graph for n, f in module.functions.items()}

    def visit(name: str) -> None:
        if name in order:
            return
        for node in calls_in(graphs[name]):
            if callee_name(node) in graphs:
                visit(callee_name(node))
        order.append(name)

    for name in graphs:
        visit(name)
    return order


def _graphs(graph: Graph) -> list[Graph]:
    """``graph`` and every region nested in it."""
    return [graph, *(region for _, region in graph.walk_regions())]


def inline_call(graph: Graph, call: Node, body: Graph) -> None:
    """Replace ``call`` (a node of ``graph``) by a copy of ``body``, the function it calls."""
    names = inline_names(call) or {}
    node_names = list(names.get("nodes") or [])
    value_names = site_values(names, body)
    here, there = call.meta.get("module_path"), body.meta.get("module_path")
    env: dict[int, Value] = {id(param): arg for param, arg in zip(body.inputs, call.inputs)}
    values = iter(value_names)
    for index, node in enumerate(body.nodes):
        args = [_map(a, env) for a in node.args]
        outs = [next(values, None) or graph.fresh_name(v.name) for v in node.outputs]
        outs = [n if not graph.has_value(n) else graph.fresh_name(n) for n in outs]
        name = node_names[index] if index < len(node_names) and node_names[index] else graph.fresh_name(node.name)
        meta = _moved(node.meta, there, here)
        copy = graph.create_node(
            node.op_type,
            args,
            _copy(node.attrs),
            [v.type for v in node.outputs],
            name=name,
            output_names=outs,
            meta=meta,
            before=call,
        )
        copy.regions = [region.clone(share_weights=False) for region in node.regions]
        for value, new in zip(node.outputs, copy.outputs):
            env[id(value)] = new
    for result, produced in zip(call.outputs, body.outputs):
        graph.replace_all_uses_with(result, env[id(produced)])
    graph.erase(call)


def _map(arg: Any, env: dict[int, Value]) -> Any:
    if isinstance(arg, Value):
        return env.get(id(arg), arg)  # a weight of the module's table stays itself
    if isinstance(arg, list):
        return [env.get(id(a), a) if isinstance(a, Value) else a for a in arg]
    return _copy(arg)


def _moved(meta: dict[str, Any], there: Any, here: Any) -> dict[str, Any]:
    """``meta`` with module paths under the function's module (``there``) moved under the call's (``here``)."""
    out = dict(meta)
    if isinstance(there, str) and isinstance(here, str) and there != here:
        stack = meta.get("module_stack")
        if isinstance(stack, list):
            out["module_stack"] = [
                type(entry)((_repath(entry[0], there, here), *entry[1:])) if isinstance(entry, (list, tuple)) else entry
                for entry in stack
            ]
    return out


def _repath(path: Any, there: str, here: str) -> Any:
    if isinstance(path, str) and (path == there or path.startswith(there + ".")):
        return here + path[len(there) :]
    return path


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


__all__ = ["Inline", "inline_call"]
