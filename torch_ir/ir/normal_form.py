"""The normal form of block functions: one way to write a function that stands for a repeated block.

A block function (a private function whose graph's ``meta`` names a ``module_path``) can be written many
ways: its inputs in any order, inputs it never reads, results no call reads. Outlining
(``outline-repeated-blocks``) and extraction with functions (``extract_ir(..., functions=True)``) make
them differently; ``normalize_block_functions`` writes every one the same way, so both give one module:

- inputs: the values the body reads, in order of first use, then the weights it reads, in order of first
  use (which is which: what the first call passes); the values are named as the first call's operands,
  the weights by their name under the first call's module (``self_attn.q_proj.weight``; a weight from
  outside the block keeps its whole name);
- results: the values a call reads or the caller keeps, in the order the body computes them; a result
  that is one of the body's inputs is the call's operand itself, and is not returned;
- symbols: the caller's symbols the body's types use;
- functions: block functions come after the other functions, in the order of their first call, named after
  their block's class (``llama_decoder_layer``, ``llama_decoder_layer_2``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from torch_ir.ir.calls import CALL_OP, block_function_name, callee_name, calls_in, copy_nodes
from torch_ir.ir.graph import Graph, Node, Value, Weight, iter_arg_values
from torch_ir.ir.types import TensorType

if TYPE_CHECKING:
    from torch_ir.ir.module import Module


def block_functions(module: Module) -> list[str]:
    """The names of the module's block functions (private, with a ``module_path``), in module order."""
    return [n for n, f in module.functions.items() if not f.public and "module_path" in f.graph.meta]


def normalize_block_functions(module: Module) -> bool:
    """Rewrite every block function of ``module`` (and its calls) in the normal form; True when one changed."""
    changed = False
    for name in block_functions(module):
        calls = [c for c in _all_calls(module) if callee_name(c) == name]
        if calls:
            changed = _normalize(module, name, calls) or changed
    return _order_and_name(module) or changed


def _all_calls(module: Module) -> Iterator[Node]:
    functions = module.functions.values()
    for function in sorted(functions, key=lambda f: not f.public):
        yield from calls_in(function.graph)


def _normalize(module: Module, name: str, calls: list[Node]) -> bool:
    body = module.function(name).graph
    first = calls[0]
    path = first.meta.get("module_path")
    params = {id(p): i for i, p in enumerate(body.inputs)}
    used: dict[int, None] = {}
    for node in body.nodes:
        for value in iter_arg_values(node.args):
            if id(value) in params:
                used.setdefault(params[id(value)], None)
    order = [i for i in used if not isinstance(first.inputs[i], Weight)]
    order += [i for i in used if isinstance(first.inputs[i], Weight)]
    outputs = _kept_outputs(body, calls, params)
    new_body = _rebuild(body, first, order, outputs, path if isinstance(path, str) else "")
    same = (
        order == list(range(len(body.inputs)))
        and outputs == list(range(len(body.outputs)))
        and [v.name for v in new_body.inputs] == [v.name for v in body.inputs]
        and new_body.symbols == body.symbols
    )
    if same:
        return False
    module.set_graph(name, new_body)
    for call in calls:
        _rewrite_call(call, order, outputs, params, body)
    return True


def _kept_outputs(body: Graph, calls: list[Node], params: dict[int, int]) -> list[int]:
    """The indices of the results the normal form returns, in the order the body computes them."""
    position = {id(n): i for i, n in enumerate(body.nodes)}
    kept = []
    for index, value in enumerate(body.outputs):
        if id(value) in params:
            continue
        if not any(
            c.graph is not None and (c.graph.users(c.outputs[index]) or c.graph.is_live(c.outputs[index]))
            for c in calls
        ):
            continue
        kept.append(index)
    produced = body.outputs

    def key(index: int) -> tuple[int, int]:
        value = produced[index]
        return (position.get(id(value.producer), -1), value.index)

    return sorted(dict.fromkeys(kept), key=key)


def _rebuild(body: Graph, first: Node, order: list[int], outputs: list[int], path: str) -> Graph:
    out = Graph()
    env: dict[int, Value] = {}
    for i in order:
        operand = first.inputs[i]
        if isinstance(operand, Weight):
            continue
        env[id(body.inputs[i])] = out.add_input(operand.name, body.inputs[i].type)
    for i in order:
        operand = first.inputs[i]
        if not isinstance(operand, Weight):
            continue
        relative = operand.name[len(path) + 1 :] if path and operand.name.startswith(path + ".") else operand.name
        param = relative if not out.has_value(relative) else out.fresh_name(relative)
        env[id(body.inputs[i])] = out.add_input(param, body.inputs[i].type)
    copy_nodes(out, body.nodes, env, keep_unmapped=True)
    out.set_outputs([env[id(body.outputs[i])] for i in outputs])
    used = {d for v in out.values() if isinstance(v.type, TensorType) for d in v.type.shape if isinstance(d, str)}
    caller = first.graph
    symbols = caller.symbols if caller is not None else {}
    out.symbols = {k: r for k, r in symbols.items() if k in used}
    out.meta = dict(body.meta)
    return out


def _rewrite_call(call: Node, order: list[int], outputs: list[int], params: dict[int, int], body: Graph) -> None:
    graph = call.graph
    assert graph is not None
    operands = call.inputs
    for index, value in enumerate(body.outputs):
        if id(value) in params:  # a result that is an input: the operand itself
            graph.replace_all_uses_with(call.outputs[index], operands[params[id(value)]])
    if outputs == list(range(len(call.outputs))):
        graph.set_args(call, [operands[i] for i in order])
        return
    name = call.name
    results = [call.outputs[i] for i in outputs]
    for _ in range(2):  # a stand-in first, so that the call keeps its name once the old one is gone
        new = graph.create_node(
            CALL_OP,
            [operands[i] for i in order],
            dict(call.attrs),
            [v.type for v in results],
            name=graph.fresh_name(name),
            meta=dict(call.meta),
            before=call,
        )
        for old, result in zip(results, new.outputs):
            graph.replace_all_uses_with(old, result)
        graph.erase(call)
        call, results = new, list(new.outputs)


def _order_and_name(module: Module) -> bool:
    """Block functions after the others, in the order of their first call, named after their block's class."""
    names = block_functions(module)
    if not names:
        return False
    first_call: dict[str, int] = {}
    for position, call in enumerate(_all_calls(module)):
        first_call.setdefault(callee_name(call), position)
    ordered = sorted(names, key=lambda n: first_call.get(n, len(first_call)))
    others = [n for n in module.functions if n not in names]
    taken = list(others)
    renames: dict[str, str] = {}
    for name in ordered:
        module_type = str(module.function(name).graph.meta.get("module_type", ""))
        renames[name] = block_function_name(taken, module_type)
        taken.append(renames[name])
    if list(module.functions) == others + [renames[n] for n in ordered] and all(k == v for k, v in renames.items()):
        return False
    functions = module.functions
    for name in names:
        module.remove_function(name)
    for name in ordered:
        module.add_function(renames[name], functions[name].graph, public=False)
    for call in _all_calls(module):
        callee = callee_name(call)
        if callee in renames and renames[callee] != callee:
            call.attrs["callee"] = renames[callee]
    return True


__all__ = ["block_functions", "normalize_block_functions"]
