"""Patterns from functions: trace the eager code of a subgraph into a pattern, and a function into its rewrite.

As torch.fx's ``replace_pattern`` does, but on torch-ir's IR: ``pattern_from_function(fn, example_args)``
runs ``fn`` through torch-ir's own frontend (torch.export, then ``canonicalize``, ``cse`` and
``eliminate-dead-nodes``, so the ops are spelled as in an extracted model) and turns the traced graph into an
``Op`` tree; ``replacement_from_function(fn, example_args)`` traces ``fn`` into a replacement that the
rewriter builds op by op, with inferred result types, atomically. ``rule_from_functions`` makes the two a
``RewriteRule``::

    def rms_norm(x, weight, eps):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def fused(x, weight, eps):
        return torch.ops.mylib.rms_norm(x, weight, eps)

    RULE = rule_from_functions(rms_norm, fused, (torch.randn(2, 8), torch.randn(8), 1e-6))

The parameters of ``fn`` are the captures, by name: a tensor parameter matches any value (an input, a
weight, a result); a scalar parameter (int, float, bool) matches any literal in the places where its example
value appears in the trace, so give it a value that appears nowhere else (``eps=1e-6``, not ``1``). Other
literals are matched as traced (``dim=-1``, ``keepdim=True``; shapes of a ``view`` too). The pattern's ops
match in either operand order where the op is commutative. Inner nodes may have no reader outside the pattern;
a node the pattern reads twice is one node.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch_ir.errors import PassError
from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ops import op_info
from torch_ir.passes.rewrite import Match, Op, PatternRewriter, RewriteRule, Var, captured_names

TRACE_PIPELINE = "canonicalize,cse,eliminate-dead-nodes"
"""What runs on a traced function before it becomes a pattern: the passes that make extracted IR canonical."""

_SCALARS = (bool, int, float)


@dataclass(frozen=True)
class Traced:
    """A function traced into a graph: the graph, and the parameter each input and scalar literal stands for."""

    graph: Graph
    inputs: dict[str, str]
    """Graph input name -> the parameter it is."""
    scalars: dict[str, Any] = field(default_factory=dict)
    """Scalar parameter -> its example value (the literals equal to it are that parameter)."""


def trace_function(fn: Callable[..., Any], example_args: Sequence[Any], what: str) -> Traced:
    """Trace ``fn(*example_args)`` with torch-ir's frontend; ``what`` names it in errors."""
    import torch

    from torch_ir.frontends.torch_export import capture
    from torch_ir.passes.manager import PassManager

    names = _parameter_names(fn, len(example_args), what)
    tensors = [n for n, a in zip(names, example_args) if isinstance(a, torch.Tensor)]
    scalars = {n: a for n, a in zip(names, example_args) if not isinstance(a, torch.Tensor)}
    for name, value in scalars.items():
        if not isinstance(value, _SCALARS):
            kind = type(value).__name__
            raise PassError(f"{what}: parameter {name} is a {kind}; give tensors, ints, floats or bools")

    class Wrapper(torch.nn.Module):
        def forward(self, *tensor_args: Any) -> Any:
            it = iter(tensor_args)
            return fn(*(next(it) if n in tensors else scalars[n] for n in names))

    module = capture(Wrapper(), tuple(a for a in example_args if isinstance(a, torch.Tensor)), name=what)
    PassManager(TRACE_PIPELINE).run(module)
    graph = module.graph
    if len(graph.inputs) != len(tensors):
        raise PassError(f"{what}: traced {len(graph.inputs)} tensor inputs for parameters {', '.join(tensors)}")
    return Traced(graph, {v.name: n for v, n in zip(graph.inputs, tensors)}, scalars)


def _parameter_names(fn: Callable[..., Any], count: int, what: str) -> list[str]:
    schema = getattr(getattr(fn, "default", fn), "_schema", None)  # a torch op: its schema names its operands
    if schema is not None:
        names = [a.name for a in schema.arguments]
        if len(names) != count:
            raise PassError(f"{what}: {count} example arguments for operands ({', '.join(names)})")
        return names
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        raise PassError(f"{what}: cannot read the parameters of {fn!r}") from None
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) != count or len(positional) != len(parameters):
        raise PassError(
            f"{what}: {count} example arguments for parameters ({', '.join(p.name for p in parameters)}); give one "
            "example per parameter (no *args, **kwargs or keyword-only parameters)"
        )
    return positional


# ------------------------------------------------------------------------- patterns


def pattern_from_function(fn: Callable[..., Any], example_args: Sequence[Any]) -> Op:
    """The ``Op`` pattern of what ``fn(*example_args)`` computes (see the module docstring); ``PassError``
    when the function does not give one tensor computed by single-result ops, or a scalar parameter does not
    appear in the trace."""
    what = f"pattern_from_function({getattr(fn, '__name__', fn)})"
    traced = trace_function(fn, example_args, what)
    graph = traced.graph
    if len(graph.outputs) != 1 or graph.outputs[0].producer is None:
        raise PassError(f"{what}: a pattern function returns one tensor that an op computes")
    reads = _reads_inside(graph)
    made: dict[int, Op] = {}
    seen_scalars: set[str] = set()

    def operand(arg: Any) -> Any:
        if isinstance(arg, Value):
            if arg.producer is None:
                return Var(traced.inputs[arg.name])
            return made[id(arg.producer)]
        if isinstance(arg, list):
            return [operand(a) for a in arg]
        for name, value in traced.scalars.items():
            if type(arg) is type(value) and arg == value:
                seen_scalars.add(name)
                return Var(name)
        return arg

    for node in graph.nodes:
        if len(node.outputs) != 1:
            raise PassError(
                f"{what}: {node.op_type} has {len(node.outputs)} results; a traced pattern holds single-result "
                "ops (write a RewritePattern for the others)"
            )
        shared = reads.get(id(node), 0) > 1
        made[id(node)] = Op(
            node.op_type,
            **{k: operand(v) for k, v in node.operands.items()},
            single_use=not shared,
            capture=f"%{node.name}" if shared else None,
        )
    unused = sorted(set(traced.scalars) - seen_scalars)
    if unused:
        raise PassError(
            f"{what}: scalar parameter(s) {', '.join(unused)} do not appear in the trace (folded by torch, or "
            "not used): a pattern cannot capture them"
        )
    return made[id(graph.outputs[0].producer)]


def _reads_inside(graph: Graph) -> dict[int, int]:
    """How many operand slots of the graph's nodes read each node's result."""
    count: dict[int, int] = {}
    for node in graph.nodes:
        for value in node.inputs:
            if value.producer is not None:
                count[id(value.producer)] = count.get(id(value.producer), 0) + 1
    return count


# --------------------------------------------------------------------- replacements


class TracedReplacement:
    """A rewrite traced from a function: called with a match, it builds the function's ops from the captures
    (by parameter name) with the rewriter, result types inferred, and returns the value that replaces the
    matched root. ``reads`` are the parameters it needs from the pattern."""

    def __init__(self, traced: Traced, what: str):
        self.traced = traced
        self.what = what
        graph = traced.graph
        if len(graph.outputs) != 1:
            raise PassError(f"{what}: a replacement function returns one tensor")
        self.reads = frozenset([*traced.inputs.values(), *traced.scalars])

    def __call__(self, found: Match, rewriter: PatternRewriter) -> Value:
        graph = self.traced.graph
        env: dict[int, Any] = {id(v): found[self.traced.inputs[v.name]] for v in graph.inputs}

        def operand(arg: Any) -> Any:
            if isinstance(arg, Value):
                return env[id(arg)]
            if isinstance(arg, list):
                return [operand(a) for a in arg]
            for name, value in self.traced.scalars.items():
                if type(arg) is type(value) and arg == value:
                    return found[name]
            return arg

        for node in graph.nodes:
            new = _create_like(node, operand, rewriter)
            for old, value in zip(node.outputs, new.outputs):
                env[id(old)] = value
        result = env.get(id(graph.outputs[0]))
        if result is None:
            raise PassError(f"{self.what}: the replacement returns its input unchanged")
        return result  # type: ignore[no-any-return]


def _create_like(node: Node, operand: Callable[[Any], Any], rewriter: PatternRewriter) -> Node:
    """A new op like ``node``, its operands mapped through ``operand``, created by ``rewriter``."""
    arguments = op_info(node.op_type).arguments
    if arguments is None:
        args = [operand(a) for a in node.args]
        return rewriter.create_op(node.op_type, *args, **{k: operand(v) for k, v in node.attrs.items()})
    operands = node.operands
    positional = [operand(operands[a.name]) for a in arguments if not a.kwarg_only and a.name in operands]
    named = {a.name: operand(operands[a.name]) for a in arguments if a.kwarg_only and a.name in operands}
    return rewriter.create_op(node.op_type, *positional, **named)


def replacement_from_function(fn: Callable[..., Any], example_args: Sequence[Any]) -> TracedReplacement:
    """The rewrite of a ``RewriteRule`` traced from ``fn(*example_args)``: its parameters are read from the
    pattern's captures by name."""
    what = f"replacement_from_function({getattr(fn, '__name__', fn)})"
    return TracedReplacement(trace_function(fn, example_args, what), what)


def rule_from_functions(
    pattern: Callable[..., Any],
    replacement: Callable[..., Any],
    example_args: Sequence[Any],
    name: str | None = None,
) -> RewriteRule:
    """A ``RewriteRule`` that replaces what ``pattern`` computes by what ``replacement`` computes, both traced
    with ``example_args``; the replacement's parameters must be parameters of the pattern (by name)."""
    op = pattern_from_function(pattern, example_args)
    rewrite = replacement_from_function(replacement, example_args)
    rule_name = name or f"{getattr(pattern, '__name__', 'pattern')}-to-{getattr(replacement, '__name__', 'rewrite')}"
    missing = sorted(rewrite.reads - captured_names(op))
    if missing:
        raise PassError(f"rule {rule_name}: the replacement reads {', '.join(missing)}, which the pattern does not")
    return RewriteRule(op, rewrite, name=rule_name)


__all__ = [
    "TRACE_PIPELINE",
    "Traced",
    "TracedReplacement",
    "pattern_from_function",
    "replacement_from_function",
    "rule_from_functions",
    "trace_function",
]
