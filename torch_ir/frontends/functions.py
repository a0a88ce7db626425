"""Extraction with functions: each distinct repeated block traced once, the model around it with calls.

``capture_functions`` traces the model once with its repeated blocks patched to ``torch_ir::block_call``
(``torch_ir.frontends.blocks``), exports the first block of each distinct function alone (its recorded
fake inputs as examples, their symbolic dimensions as ``Dim``\\ s), and builds a module: the model's graph
with one ``func.call`` per block and one private function per distinct block, whose inputs are the block's
tensor arguments (its cache slices last, where it has them) then its weights, named by their path in the
block. A group the trace could not prove uniform is traced inline in a second trace, with a
``TorchIRWarning`` that says why.

Names are the flat trace's: torch.export names a node after its op and a counter per name, so the names
the flat trace would give are found by replaying that counter over the model's nodes with each call
expanded into its function's nodes (``_flat_names``). The body takes the names of the first block; each
call keeps the names of its own block (``meta["inline"]``), so ``inline`` gives back the flat graph, and
``annotate-shapes,canonicalize,outline-repeated-blocks`` makes of this module and of the flat extraction
the same module.
"""

from __future__ import annotations

import operator
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind
from torch.fx.graph import _Namespace
from torch.utils import _pytree as pytree

from torch_ir.errors import ExportError, TorchIRWarning
from torch_ir.frontends.blocks import (
    BLOCK_OP_TYPE,
    TENSOR,
    BlockGroup,
    BlockTrace,
    TracedFunction,
    Unsupported,
    one_layer_cache,
)
from torch_ir.frontends.fake_device import check_device
from torch_ir.frontends.functionalize import functionalize
from torch_ir.frontends.torch_export import (
    convert_program,
    export_program,
    functional_program,
    symbol_names,
    type_name,
)
from torch_ir.ir.calls import CALL_OP, block_function_name, inline_meta
from torch_ir.ir.graph import Graph, Value, Weight
from torch_ir.ir.module import IR
from torch_ir.ir.run_record import StageReport, paused_gc

BODY_PREFIX = "block"
"""The block's name inside the module that exports it alone (its weights are ``block.<name>`` there)."""

_SUFFIX = re.compile(r"^(.*)_(\d+)$")
BLOCK_OP_TARGET = "torch_ir.block_call.default"


def capture_functions(
    model: torch.nn.Module,
    example_inputs: Sequence[Any] | Any = (),
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    dynamic_shapes: Any = None,
    name: str | None = None,
    device: str | torch.device = "cpu",
) -> IR:
    """The module of ``model`` with each distinct repeated block traced once and called per block (no
    passes run). Same arguments as ``torch_ir.frontends.torch_export.capture``; ``decompose`` is not
    offered (a decomposed trace has no blocks left to find)."""
    stages = StageReport()
    traced = trace_with_blocks(
        model,
        example_inputs,
        example_kwargs=example_kwargs,
        dynamic_shapes=dynamic_shapes,
        device=device,
        stages=stages,
    )
    with stages.measure("convert"), paused_gc():
        graph, functions = traced.convert()
        graph.meta["model"] = name or type(model).__name__
        module = IR(graph, stages)
        for function_name, body in functions:
            module.add_function(function_name, body, public=False)
    return module


@dataclass
class Body:
    """One traced function: its exported program, the module that exported it, and its dynamic shapes (one
    per tensor argument: how the converter reads them; torch.export gets them as its one ``*tensors``)."""

    function: TracedFunction
    program: ExportedProgram
    wrapper: torch.nn.Module
    dynamic_shapes: tuple[Any, ...]


@dataclass
class Traced:
    """A model's trace with blocks as calls: the model's program, one body per function, and the trace."""

    program: ExportedProgram
    model: torch.nn.Module
    dynamic_shapes: Any
    trace: BlockTrace
    bodies: dict[int, Body]
    device: torch.device

    def convert(self, taken: Sequence[str] = (), path_prefix: str = "") -> tuple[Graph, list[tuple[str, Graph]]]:
        """The model's graph with ``func.call`` nodes, and each function's (name, body graph), named after the
        flat trace; ``taken`` names no function may have (other entries' functions); calls are named after
        their block's path without ``path_prefix`` (the name of a wrapper around the model)."""
        with self.trace.active():
            self.program = functional_program(
                self.program, self.model, dynamic_shapes=self.dynamic_shapes, device=self.device
            )
            for body in self.bodies.values():
                body.program = functional_program(
                    body.program,
                    body.wrapper,
                    dynamic_shapes=body.dynamic_shapes,
                    device=self.device,
                    inputs_as_outputs=True,
                )
            sites = _flat_names(self.program, self.bodies)
            graph = convert_program(self.program, self.model, dynamic_shapes=self.dynamic_shapes)
            functionalize(graph)
        outer: dict[int, list[Any]] = {}
        for node, call in zip((n for n in graph.nodes if n.op_type == BLOCK_OP_TYPE), self.trace.calls):
            stack = list(node.meta.get("module_stack") or [])
            outer.setdefault(call.function.index, stack[:-1] if stack and stack[-1][0] == call.path else stack)
        names = list(taken)
        functions: list[tuple[str, Graph]] = []
        built: dict[int, tuple[str, Graph, list[int]]] = {}
        for index, body in self.bodies.items():
            body_graph = convert_program(body.program, body.wrapper, dynamic_shapes=body.dynamic_shapes)
            functionalize(body_graph, inputs_as_outputs=True)
            function_graph, weight_index = _as_function(body_graph, body.function, graph, outer.get(index, []))
            function_name = block_function_name(names, type_name(body.function.module_type))
            names.append(function_name)
            built[index] = (function_name, function_graph, weight_index)
            functions.append((function_name, function_graph))
        _replace_block_calls(graph, self.trace, built, sites, path_prefix)
        return graph, functions


def trace_with_blocks(
    model: torch.nn.Module,
    example_inputs: Sequence[Any] | Any = (),
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    dynamic_shapes: Any = None,
    device: str | torch.device = "cpu",
    stages: StageReport | None = None,
) -> Traced:
    """Trace ``model`` with its repeated blocks as calls, then export each distinct block alone; a group
    that cannot be a function (see ``torch_ir.frontends.blocks``) is traced inline in a second trace."""
    stages = stages or StageReport()
    target = check_device(device)
    skip: set[int] = set()
    while True:
        trace = BlockTrace(model, skip)
        try:
            with trace.patched():
                program = export_program(
                    model,
                    example_inputs,
                    example_kwargs=example_kwargs,
                    dynamic_shapes=dynamic_shapes,
                    stages=stages,
                    device=target,
                    functionalization="ir",
                )
        except ExportError:
            if not trace.failed:
                raise
            for group in trace.failed:
                _warn_inline(group)
                skip.add(group.index)
            continue
        bodies: dict[int, Body] = {}
        if not trace.failed:
            with stages.measure("export blocks"):
                for function in trace.functions:
                    if function.group.failed:
                        continue
                    try:
                        bodies[function.index] = _export_body(function, program, model, dynamic_shapes, target)
                    except (Unsupported, ExportError) as exc:
                        function.group.failed = f"{function.representative} cannot be exported alone: {exc}"
        failed = trace.failed
        if not failed:
            return Traced(program, model, dynamic_shapes, trace, bodies, target)
        for group in failed:
            _warn_inline(group)
            skip.add(group.index)


def _warn_inline(group: BlockGroup) -> None:
    first, last = group.members[0][0], group.members[-1][0]
    kind = type(group.members[0][1]).__name__
    warnings.warn(
        f"{first} .. {last} ({len(group.members)} x {kind}) are traced block by block, not once: {group.failed}",
        TorchIRWarning,
        stacklevel=4,
    )


class BlockBody(torch.nn.Module):
    """Calls one block with the arguments of a traced function, from its tensor arguments alone (cache
    slices last), and returns the block's tensor results followed by the new cache slices."""

    def __init__(self, block: torch.nn.Module, function: TracedFunction, cache_layer: Any = None):
        super().__init__()
        self.block = block
        self._function = function
        self._cache_layer = cache_layer

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        function = self._function
        count = len(tensors) - len(function.state)
        cache = None
        if function.state:
            cache = one_layer_cache(self._cache_layer, dict(zip(function.state, tensors[count:])))
        given = iter(tensors[:count])
        flat = [
            next(given) if leaf is TENSOR else (cache if _is_cache_leaf(leaf) else leaf) for leaf in function.leaves
        ]
        args, kwargs = pytree.tree_unflatten(flat, function.spec)
        out = self.block(*args, **kwargs)
        results = [x for x in pytree.tree_leaves(out) if isinstance(x, torch.Tensor)]
        if cache is not None:
            results += [getattr(cache._layer, name) for name in function.state]
        return tuple(results)


def _is_cache_leaf(leaf: Any) -> bool:
    return hasattr(leaf, "layers") and callable(getattr(leaf, "update", None))


def _export_body(
    function: TracedFunction,
    program: ExportedProgram,
    model: torch.nn.Module,
    dynamic_shapes: Any,
    target: torch.device,
) -> Body:
    """Export the function's first block alone, on example inputs like its first call's fake inputs."""
    module = model.get_submodule(function.representative)
    cache_layer = None
    if function.state:
        cache = next(leaf for leaf in function.leaves if _is_cache_leaf(leaf))
        from torch_ir.frontends.blocks import block_index

        cache_layer = cache.layers[block_index(module, function.representative)]
    wrapper = BlockBody(module, function, cache_layer)
    names = symbol_names(program, model, dynamic_shapes)
    ranges = program.range_constraints
    dims: dict[Any, Any] = {}
    examples: list[torch.Tensor] = []
    specs: list[Any] = []
    for tensor in function.inputs:
        spec: dict[int, Any] = {}
        shape: list[int] = []
        for axis, size in enumerate(tensor.shape):
            if isinstance(size, torch.SymInt):
                expr = size.node.expr
                if not getattr(expr, "is_symbol", False):
                    raise Unsupported(f"an argument has the derived size {size}, which a call cannot be given")
                if expr not in dims:
                    bounds = ranges.get(expr)
                    low = int(bounds.lower) if bounds is not None and _finite(bounds.lower) else None
                    high = int(bounds.upper) if bounds is not None and _finite(bounds.upper) else None
                    dim_name = str(names.get(expr, expr))
                    dims[expr] = torch.export.Dim(dim_name, min=low, max=high)
                spec[axis] = dims[expr]
                shape.append(int(size.node.hint))
            else:
                shape.append(int(size))
        stride = [int(s.node.hint) if isinstance(s, torch.SymInt) else int(s) for s in tensor.stride()]
        example_device = target if target.type != "meta" else torch.device("meta")
        examples.append(torch.empty_strided(shape, stride, dtype=tensor.dtype, device=example_device))
        specs.append(spec or None)
    dynamic = tuple(specs) if dims else None
    body_program = export_program(
        wrapper, tuple(examples), dynamic_shapes=(dynamic,) if dynamic else None, device=target, functionalization="ir"
    )
    for spec in body_program.graph_signature.input_specs:
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER) and str(spec.target).startswith(BODY_PREFIX + "."):
            continue
        if spec.kind != InputKind.USER_INPUT:
            raise Unsupported(f"it reads {spec.target}, which is neither one of its arguments nor one of its weights")
    return Body(function, body_program, wrapper, dynamic or ())


def _finite(x: Any) -> bool:
    try:
        return abs(float(x)) != float("inf")
    except (TypeError, ValueError, OverflowError):
        return False


# ------------------------------------------------------------------------ names


def _base(name: str) -> str:
    match = _SUFFIX.match(name)
    return match.group(1) if match else name


def _named_nodes(graph: fx.Graph) -> list[fx.Node]:
    return [n for n in graph.nodes if n.op in ("call_function", "get_attr")]


def _flat_names(program: ExportedProgram, bodies: Mapping[int, Body]) -> list[dict[str, str]]:
    """Rename the model's FX nodes to the names the flat trace gives them, and each function's FX nodes to
    the names of its first block; return, per block call in order, its function's node names (as renamed)
    mapped to the names they have in that block."""
    namespace = _Namespace()
    main = program.graph
    for node in main.nodes:
        if node.op == "placeholder":
            namespace._used_names.add(node.name)
    block_calls = [n for n in main.nodes if n.op == "call_function" and str(n.target) == BLOCK_OP_TARGET]
    called = set(block_calls)
    results = {n for n in main.nodes if n.target is operator.getitem and n.args[0] in called}
    renames: dict[fx.Node, str] = {}
    sites: list[tuple[int, list[str]]] = []
    for node in _named_nodes(main):
        if node.op == "call_function" and str(node.target) == BLOCK_OP_TARGET:
            index = int(node.args[0])  # type: ignore[arg-type]
            nodes = _named_nodes(bodies[index].program.graph)
            sites.append((index, [namespace.create_name(_base(b.name), None) for b in nodes]))
            renames[node] = f"_torch_ir_block_call_{len(sites)}"
        elif node in results:
            renames[node] = f"_torch_ir_block_result_{len(renames)}"
        else:
            renames[node] = namespace.create_name(_base(node.name), None)
    for node, new in renames.items():
        node.name = new
    first: dict[int, list[str]] = {}
    for index, names in sites:
        if index not in first:
            first[index] = names
            for body_node, name in zip(_named_nodes(bodies[index].program.graph), names):
                body_node.name = name
    return [dict(zip(first[index], names)) for index, names in sites]


# ------------------------------------------------------------- bodies and calls


def _as_function(body: Graph, function: TracedFunction, caller: Graph, outer: list[Any]) -> tuple[Graph, list[int]]:
    """The exported block as a function graph: its tensor arguments then its weights as inputs, module paths
    of the model, and, for each weight input, its index among the block's weights (the op's operands)."""
    out = Graph()
    env: dict[int, Value] = {}
    taken: set[str] = set()
    for value, arg_name in zip(body.inputs, function.arg_names):
        name = _unique(arg_name, taken)
        env[id(value)] = out.add_input(name, value.type)
    if len(body.inputs) != len(function.arg_names):
        raise ExportError(
            f"{function.representative}: its export has {len(body.inputs)} inputs, not {len(function.arg_names)}"
        )
    weight_index: list[int] = []
    positions = {name: i for i, name in enumerate(function.weight_names)}
    prefix = BODY_PREFIX + "."
    for weight in body.weights.values():
        relative = next((n.removeprefix(prefix) for n in weight.names if n.startswith(prefix)), None)
        if relative is None or relative not in positions:
            raise Unsupported(f"it reads {weight.name}, which is not one of its own weights")
        weight_index.append(positions[relative])
        env[id(weight)] = out.add_input(_unique(relative, taken), weight.type)
    path = function.representative
    for node in body.nodes:
        args = [_mapped(a, env) for a in node.args]
        meta = dict(node.meta)
        stack = meta.get("module_stack")
        if isinstance(stack, list):
            meta["module_stack"] = outer + [[_repath(entry[0], path), *entry[1:]] for entry in stack if entry[0]]
        copy = out.create_node(
            node.op_type,
            args,
            dict(node.attrs),
            [v.type for v in node.outputs],
            name=node.name,
            output_names=[v.name for v in node.outputs],
            meta=meta,
        )
        copy.regions = [region.clone(share_weights=False) for region in node.regions]
        for value, new in zip(node.outputs, copy.outputs):
            env[id(value)] = new
    out.set_outputs([env[id(v)] for v in body.outputs])
    used = {str(d) for v in out.values() if v.type is not None for d in (v.type.shape or ()) if isinstance(d, str)}
    out.symbols = {k: r for k, r in caller.symbols.items() if k in used}
    out.meta = {"module_path": path, "module_type": type_name(function.module_type)}
    return out, weight_index


def _repath(path: str, block: str) -> str:
    if path == BODY_PREFIX:
        return block
    return block + path[len(BODY_PREFIX) :] if path.startswith(BODY_PREFIX + ".") else path


def _unique(name: str, taken: set[str]) -> str:
    candidate, counter = name, 1
    while candidate in taken:
        counter += 1
        candidate = f"{name}_{counter}"
    taken.add(candidate)
    return candidate


def _mapped(arg: Any, env: dict[int, Value]) -> Any:
    if isinstance(arg, Value):
        return env[id(arg)]
    if isinstance(arg, list):
        return [env[id(a)] if isinstance(a, Value) else a for a in arg]
    return arg


def _block_weight(graph: Graph, path: str, relative: str) -> Weight:
    """The module weight a block at ``path`` calls ``relative`` (by its name or one of its aliases)."""
    name = f"{path}.{relative}"
    if graph.has_weight(name):
        return graph.weight(name)
    found = next((w for w in graph.weights.values() if name in w.aliases), None)
    if found is None:
        raise ExportError(f"{path}: the model has no weight {name} for its call")
    return found


def _site_name(name: str, names: Mapping[str, str]) -> str:
    """The name a body node has at a call: the call's name of its FX node, or, for a node functionalization
    made (``slice_16_scatter``), the call's name of the node it was made from with the same suffix."""
    found = names.get(name)
    if found is not None:
        return found
    cut = name.rfind("_")
    while cut > 0:
        head = names.get(name[:cut])
        if head is not None:
            return head + name[cut:]
        cut = name.rfind("_", 0, cut)
    return name


def _replace_block_calls(
    graph: Graph,
    trace: BlockTrace,
    built: Mapping[int, tuple[str, Graph, list[int]]],
    sites: list[dict[str, str]],
    path_prefix: str = "",
) -> None:
    """Each ``torch_ir.block_call`` node becomes a ``func.call`` of its function: the block's tensor
    arguments, then its weights in the function's order; its meta says the block and keeps its names."""
    block_nodes = [n for n in graph.nodes if n.op_type == BLOCK_OP_TYPE]
    for node, call, names in zip(block_nodes, trace.calls, sites, strict=True):
        function_name, body, weight_index = built[call.function.index]
        arguments = node.args[0]
        weights = [_block_weight(graph, call.path, call.function.weight_names[i]) for i in weight_index]
        operands = [a for a in arguments if isinstance(a, Value)] + weights
        stack = node.meta.get("module_stack") or []
        meta = {
            "module_stack": stack,
            "module_path": call.path,
            "inline": inline_meta(
                [_site_name(n.name, names) for n in body.nodes],
                [_site_name(v.name, names) for n in body.nodes for v in n.outputs],
                body.nodes,
            ),
        }
        new = graph.create_node(
            CALL_OP,
            operands,
            {"callee": function_name},
            [v.type for v in body.outputs],
            name=graph.fresh_name(call.path.removeprefix(path_prefix)),
            meta=meta,
            before=node,
        )
        if len(new.outputs) != len(node.outputs):
            raise ExportError(
                f"{call.path}: the traced block returns {len(body.outputs)} tensors, the call {len(node.outputs)}"
            )
        for old, result in zip(node.outputs, new.outputs):
            graph.replace_all_uses_with(old, result)
        graph.erase(node)


__all__ = ["BlockBody", "Traced", "capture_functions", "trace_with_blocks"]
