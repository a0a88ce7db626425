"""outline-repeated-blocks: one private function per distinct repeated block, called once per block.

A block is the nodes one child of a module list computed (``model.layers.17``: every node whose module
stack holds that path), when they stand together in the node order. Blocks are the same when they are equal
up to weights: the same ops, attributes, types and wiring, the same metadata once the block's path is
taken out, and weights that are the block's own at the same place under its path
(``model.layers.17.self_attn.q_proj.weight`` is ``self_attn.q_proj.weight`` of block 17). Each group of
two or more equal blocks becomes a private function (the first block's nodes, its inputs the values the
block reads from outside, then the weights it reads) and each block a ``func.call`` that passes that
block's values and weights. A call keeps the names its block had (``meta["inline"]``) and the block's
path, so ``inline`` gives back the IR exactly: ``inline(outline(ir)) == ir``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar

from torch_ir.ir.calls import CALL_OP, block_function_name, copy_nodes, inline_meta
from torch_ir.ir.graph import Graph, Node, Value, Weight, iter_arg_values
from torch_ir.ir.module import Module
from torch_ir.ir.normal_form import normalize_block_functions
from torch_ir.passes.base import Pass, PassContext, PassResult
from torch_ir.passes.registry import register_pass

_INDEXED = re.compile(r"^(?P<parent>.+)\.(?P<index>\d+)$")


@register_pass
@dataclass(frozen=True)
class OutlineRepeatedBlocks(Pass):
    """Turn repeated blocks (the children of a module list) into one function each, called per block."""

    name: ClassVar[str] = "outline-repeated-blocks"
    scope: ClassVar[str] = "module"
    uses_torch: ClassVar[bool] = False
    regions: ClassVar[str] = "does not enter: a block inside a region stays there"

    min_calls: int = 2
    """Outline a kind of block only when it repeats at least this many times."""

    def run(self, module: Module, ctx: PassContext) -> PassResult:
        modified = False
        for function in list(module.functions.values()):
            if not function.public:
                continue
            for group in _groups(function.graph):
                if len(group) >= self.min_calls:
                    _outline(module, function.graph, group, ctx)
                    modified = True
        if normalize_block_functions(module):
            modified = True
        return PassResult(module, modified)


@dataclass
class Block:
    """The nodes of one child of a module list, and what they read and give to the rest of the graph."""

    path: str
    module_type: str
    nodes: list[Node]
    inputs: list[Value]
    weights: list[Weight]
    outputs: list[Value]
    key: Any = None


def _blocks(graph: Graph) -> list[Block]:
    """Every block of ``graph`` whose nodes stand together in the order, in order."""
    members: dict[str, list[Node]] = defaultdict(list)
    types: dict[str, str] = {}
    siblings: dict[str, set[str]] = defaultdict(set)
    for node in graph.nodes:
        for entry in node.meta.get("module_stack") or []:
            path = entry[0] if isinstance(entry, (list, tuple)) and entry else None
            match = _INDEXED.match(path) if isinstance(path, str) else None
            if match:
                members[path].append(node)
                types.setdefault(path, str(entry[1]) if len(entry) > 1 else "")
                siblings[match.group("parent")].add(path)
                break  # the outermost indexed module is the block
    position = {id(n): i for i, n in enumerate(graph.nodes)}
    blocks = []
    for path, nodes in members.items():
        parent = _INDEXED.match(path).group("parent")  # type: ignore[union-attr]
        if len(siblings[parent]) < 2:
            continue
        first, last = position[id(nodes[0])], position[id(nodes[-1])]
        if last - first + 1 != len(nodes) or any(n.op_type == CALL_OP for n in nodes):
            continue  # something else stands between its nodes: outlining would reorder the graph
        blocks.append(_interface(graph, path, types[path], nodes))
    return sorted(blocks, key=lambda b: position[id(b.nodes[0])])


def _interface(graph: Graph, path: str, module_type: str, nodes: list[Node]) -> Block:
    inside = {id(v) for n in nodes for v in n.outputs}
    inputs: dict[int, Value] = {}
    weights: dict[int, Weight] = {}
    for node in nodes:
        for value in iter_arg_values(node.args):
            if isinstance(value, Weight):
                weights.setdefault(id(value), value)
            elif id(value) not in inside:
                inputs.setdefault(id(value), value)
    members = {id(n) for n in nodes}
    outputs = [
        v for n in nodes for v in n.outputs if graph.is_live(v) or any(id(u) not in members for u in graph.users(v))
    ]
    return Block(path, module_type, nodes, list(inputs.values()), list(weights.values()), outputs)


def _groups(graph: Graph) -> list[list[Block]]:
    """The blocks of ``graph`` grouped by their structure up to weights, groups in order of first block."""
    groups: dict[Any, list[Block]] = {}
    for block in _blocks(graph):
        block.key = _structure(block)
        groups.setdefault(block.key, []).append(block)
    return list(groups.values())


def _structure(block: Block) -> Any:
    """What two equal blocks share: ops, attributes, wiring, types, metadata and weights, relative to the block."""
    local: dict[int, tuple[str, int, int]] = {}
    for i, value in enumerate(block.inputs):
        local[id(value)] = ("in", i, 0)
    for i, weight in enumerate(block.weights):
        local[id(weight)] = ("w", i, 0)
    rows = []
    for index, node in enumerate(block.nodes):
        args = [_operand_key(a, local) for a in node.args]
        rows.append(
            (
                node.op_type,
                repr(node.attrs),
                repr(args),
                tuple(v.type for v in node.outputs),
                repr(_relative(node.meta, block.path)),
                tuple(r.signature() for r in node.regions),
            )
        )
        for j, value in enumerate(node.outputs):
            local[id(value)] = ("node", index, j)
    return (
        block.module_type,
        tuple(v.type for v in block.inputs),
        tuple((_relative_name(w.name, block.path), w.type, w.kind) for w in block.weights),
        tuple(local[id(v)] for v in block.outputs),
        tuple(rows),
    )


def _operand_key(arg: Any, local: dict[int, tuple[str, int, int]]) -> Any:
    if isinstance(arg, Value):
        return local[id(arg)]
    if isinstance(arg, list):
        return [_operand_key(a, local) if isinstance(a, Value) else ("=", repr(a)) for a in arg]
    return ("=", repr(arg))


def _relative_name(name: str, path: str) -> str:
    return name[len(path) + 1 :] if name.startswith(path + ".") else "/" + name  # '/': a weight not the block's


def _relative(meta: dict[str, Any], path: str) -> dict[str, Any]:
    stack = meta.get("module_stack")
    if not isinstance(stack, list):
        return meta
    out = dict(meta)
    out["module_stack"] = [
        (
            ("<block>" + e[0][len(path) :]) if isinstance(e[0], str) and (e[0] + ".").startswith(path + ".") else e[0],
            *e[1:],
        )
        for e in stack
        if isinstance(e, (list, tuple)) and e
    ]
    return out


def _outline(module: Module, graph: Graph, group: list[Block], ctx: PassContext) -> None:
    first = group[0]
    name = block_function_name(module.functions, first.module_type)
    body = _body(first)
    module.add_function(name, body, public=False)
    replaced: dict[int, Value] = {}
    for block in group:
        _replace(graph, block, name, replaced)
    ctx.log(f"outline-repeated-blocks: {first.module_type} x{len(group)} -> function {name}", 1)


def _body(block: Block) -> Graph:
    """The function graph of ``block``: its inputs, then its weights, as inputs; its nodes; its outputs."""
    body = Graph()
    env: dict[int, Value] = {}
    for value in block.inputs:
        env[id(value)] = body.add_input(value.name, value.type)
    for weight in block.weights:
        param = _relative_name(weight.name, block.path).lstrip("/")
        env[id(weight)] = body.add_input(param if not body.has_value(param) else body.fresh_name(param), weight.type)
    copy_nodes(body, block.nodes, env, keep_unmapped=False)
    body.set_outputs([env[id(v)] for v in block.outputs])
    body.meta = {"module_path": block.path, "module_type": block.module_type}
    return body


def _replace(graph: Graph, block: Block, callee: str, replaced: dict[int, Value]) -> None:
    """Put a call of ``callee`` where ``block`` stands, then remove the block's nodes. ``replaced`` maps the
    results of blocks outlined before to the calls' results (a block may read what the one before gives)."""
    last_stack = block.nodes[0].meta.get("module_stack") or []
    stack = []
    for entry in last_stack:
        stack.append(entry)
        if isinstance(entry, (list, tuple)) and entry and entry[0] == block.path:
            break
    meta = {
        "module_stack": stack,
        "module_path": block.path,
        "inline": inline_meta(
            [n.name for n in block.nodes], [v.name for n in block.nodes for v in n.outputs], block.nodes
        ),
    }
    call = graph.create_node(
        CALL_OP,
        [*(replaced.get(id(v), v) for v in block.inputs), *block.weights],
        {"callee": callee},
        [v.type for v in block.outputs],
        name=graph.fresh_name(block.path),
        meta=meta,
        before=block.nodes[0],
    )
    for old, new in zip(block.outputs, call.outputs):
        graph.replace_all_uses_with(old, new)
        replaced[id(old)] = new
    for node in reversed(block.nodes):
        graph.erase(node)


__all__ = ["Block", "OutlineRepeatedBlocks"]
