"""Localizing a divergence inside the regions of a control-flow op.

When the first node whose value differs from eager PyTorch is a region op, its regions are run once per
execution (a cond's branch, each loop iteration in order) on the IR's own operand values, next to the
matching subgraph of the re-exported model on the same inputs; the first inner value that differs is
the divergence, reported with its path (``scan/combine/cond/true/linear``). Nested region ops are
searched the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ir.regions import region_name
from torch_ir.runtime.node_errors import NodeError, record_node_error

Found = tuple[str, Value, Any]
"""``(path, value, comparison)``: the region path (``scan/combine/``), the first differing value, how it differs."""

Compare = Callable[[Any, Any], Any]
"""``compare(got, expected)``: a comparison whose ``passed`` says whether the values agree."""

Opener = Callable[..., Any]
"""``opener(graph, keep_all=True)``: an interpreter of a region, running where the IR's interpreter runs (in
this process, or in the worker for an IR read from a file: ``Interpreter.open``)."""

_SUBGRAPH_ARGS = {
    "higher_order.cond": (1, 2),
    "higher_order.while_loop": (0, 1),
    "higher_order.scan": (0,),
    "higher_order.map_impl": (0,),
}
"""Which positional arguments of torch's higher-order call are the subgraphs, in region order."""


def locate(
    node: Node,
    operands: list[Any],
    fx_owner: torch.fx.GraphModule,
    compare: Compare,
    path: str = "",
    opener: Opener | None = None,
    errors: list[NodeError] | None = None,
) -> Found | None:
    """The first value in ``node``'s regions that differs from eager, as ``(path, value, comparison)``.

    ``operands`` are the node's args with values filled in (lists stay lists); ``fx_owner`` is the
    GraphModule (of the re-exported model) that holds the matching higher-order call; ``opener`` makes the
    interpreters of the regions (default: in this process). ``errors``, when given, receives every
    comparison made (``runtime/node_errors.py``).
    """
    fx_node = next((n for n in fx_owner.graph.nodes if n.op == "call_function" and n.name == node.name), None)
    if fx_node is None or node.op_type not in _SUBGRAPH_ARGS:
        return None
    subgraphs = []
    for index in _SUBGRAPH_ARGS[node.op_type]:
        raw = fx_node.args[index]
        target = raw.target if isinstance(raw, torch.fx.Node) else None
        module = getattr(fx_owner, str(target), None) if target is not None else None
        if not isinstance(module, torch.fx.GraphModule):
            return None
        subgraphs.append(module)

    def run(index: int, inputs: list[Any]) -> tuple[Found | None, list[Any]]:
        region = node.regions[index]
        inner_path = f"{path}{node.name}/{region_name(node.op_type, index)}/"
        return _compare_region(region, subgraphs[index], inputs, compare, inner_path, opener, errors)

    kind = node.op_type.split(".", 1)[1]
    if kind == "cond":
        pred, values = operands
        return run(0 if bool(pred) else 1, list(values))[0]
    if kind == "while_loop":
        carried, additional = list(operands[0]), list(operands[1])
        while True:
            found, out = run(0, carried + additional)
            if found or not bool(out[0]):
                return found
            found, carried = run(1, carried + additional)
            if found:
                return found
    if kind == "scan":
        init, xs, additional = (list(o) for o in operands)
        carry = init
        for i in range(int(xs[0].shape[0]) if xs else 0):
            found, out = run(0, carry + [x[i] for x in xs] + additional)
            if found:
                return found
            carry = out[: len(init)]
        return None
    xs, extra = list(operands[0]), list(operands[1])
    for i in range(int(xs[0].shape[0]) if xs else 0):
        found, _ = run(0, [x[i] for x in xs] + extra)
        if found:
            return found
    return None


def _compare_region(
    region: Graph,
    gm: torch.fx.GraphModule,
    inputs: list[Any],
    compare: Compare,
    path: str,
    opener: Opener | None,
    errors: list[NodeError] | None = None,
) -> tuple[Found | None, list[Any]]:
    if opener is None:
        from torch_ir.runtime.interpreter import Interpreter

        interp = Interpreter(region, keep_all=True)
    else:
        interp = opener(region, keep_all=True)
    outputs = interp.run_flat(inputs)
    got = interp.kept
    expected = _fx_values(gm, inputs)
    for node in region.nodes:
        for value in node.outputs:
            if value.name not in got or value.name not in expected:
                continue
            a, b = got[value.name], expected[value.name]
            if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
                continue
            if a.shape != b.shape or a.dtype != b.dtype:
                continue
            comparison = compare(a, b)
            record_node_error(errors, node, value, comparison, path)
            if comparison.passed:
                continue
            if node.regions:
                operands = [_fill(arg, got) for arg in node.args]
                inner = locate(node, operands, gm, compare, path, opener, errors)
                if inner is not None:
                    return inner, outputs
            return (path, value, comparison), outputs
    return None, outputs


def locate_in_model(
    node: Node,
    interp: Any,
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    compare: Compare,
    errors: list[NodeError] | None = None,
) -> Found | None:
    """``locate`` for a top-level region op of ``interp``'s graph, against ``model`` re-exported on ``args``."""
    from collections import ChainMap

    from torch_ir.ir.graph import Weight

    graph: Graph = interp.graph
    keep = [v.name for v in node.inputs if not isinstance(v, Weight)]
    runner = interp.open(graph, keep=keep)
    runner.run_flat(interp.flatten_inputs(args, kwargs))
    values = ChainMap(runner.kept, interp.weights)
    operands = [_fill(arg, values) for arg in node.args]
    program = torch.export.export(model, args, kwargs=kwargs, strict=False)
    return locate(node, operands, program.graph_module, compare, opener=interp.open, errors=errors)


def _fill(arg: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(arg, Value):
        return values[arg.name]
    if isinstance(arg, list):
        return [_fill(a, values) for a in arg]
    return arg


def _fx_values(gm: torch.fx.GraphModule, inputs: list[Any]) -> dict[str, Any]:
    """Every value of an FX subgraph run on ``inputs``, by node name."""
    interp = torch.fx.Interpreter(gm)
    env: dict[torch.fx.Node, Any] = {}
    feed = iter(inputs)
    values: dict[str, Any] = {}
    with torch.no_grad():
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                env[node] = next(feed)
            elif node.op == "output":
                break
            else:
                args = torch.fx.node.map_arg(node.args, env.__getitem__)
                kwargs = torch.fx.node.map_arg(node.kwargs, env.__getitem__)
                env[node] = getattr(interp, node.op)(node.target, args, kwargs)
            values[node.name] = env[node]
    return values


__all__ = ["locate", "locate_in_model"]
