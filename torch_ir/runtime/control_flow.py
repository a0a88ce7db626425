"""Executing region ops: cond, while_loop, scan and map, each with its real semantics.

Each region runs through an ``Interpreter`` of its own, built once when the enclosing plan is built, under
the enclosing interpreter's policy (an IR read from a file runs allow-listed ops in its regions too).
Regions are closed graphs (captured weights arrive as operands), so they bind no weights. Loops run
as long as their data says: a ``while_loop`` evaluates its ``cond`` region before every iteration. Every
iteration of every loop, at any depth, counts against the call's one iteration limit
(``torch_ir.runtime.limits``); a ``scan`` or ``map`` longer than what is left of it is refused before it
starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from torch_ir.errors import InterpreterError
from torch_ir.ir.graph import Graph, Node
from torch_ir.ir.regions import REGION_OPS, check_region_op, region_name
from torch_ir.ir.types import TensorType
from torch_ir.runtime.coverage import entering, region_label
from torch_ir.runtime.limits import RunLimits, active_limits, max_loop_iterations

if TYPE_CHECKING:
    from torch_ir.runtime.interpreter import Interpreter


def region_kernel(node: Node, device: torch.device, module: Any = None, policy: Any = None) -> Callable[..., list[Any]]:
    """The callable that executes region op ``node``; it takes the node's operand groups as arguments.
    ``module`` is the module whose functions calls inside the regions run; ``policy`` the enclosing
    interpreter's ``ExecutionPolicy``."""
    from torch_ir.runtime.interpreter import Interpreter

    if node.op_type not in REGION_OPS:
        raise InterpreterError(f"node {node.name}: {node.op_type} owns regions but is not a region op torch-ir runs")
    problem = check_region_op(node)
    if problem:
        raise InterpreterError(f"node {node.name} ({node.op_type}): {problem}")
    runners = []
    for index, region in enumerate(node.regions):
        where = f"region {region_name(node.op_type, index)} of node {node.name} ({node.op_type})"
        try:
            label = region_label(node.name, node.op_type, index)
            runners.append(
                _RegionRunner(Interpreter(region, device=device, module=module, policy=policy), where, label)
            )
        except InterpreterError as exc:
            raise type(exc)(f"{where}: {exc}") from exc
    kind = node.op_type.split(".", 1)[1]
    if kind == "cond":
        return _cond(*runners)
    if kind == "while_loop":
        return _while_loop(runners[0], runners[1], f"node {node.name} ({node.op_type})")
    where = f"node {node.name} ({node.op_type})"
    if kind == "scan":
        return _scan(runners[0], where)
    return _map(runners[0], where)


class _RegionRunner:
    """Runs one region on flat inputs; errors inside it name the op and the region; a recording
    ``RegionCoverage`` counts the run under ``label``."""

    def __init__(self, interp: Interpreter, where: str, label: str):
        self.interp = interp
        self.where = where
        self.label = label

    @property
    def graph(self) -> Graph:
        return self.interp.graph

    def __call__(self, inputs: Sequence[Any]) -> list[Any]:
        try:
            with entering(self.label, inputs):
                return self.interp.run_flat(inputs)
        except InterpreterError as exc:
            raise type(exc)(f"{self.where}: {exc}") from exc


def _cond(true: _RegionRunner, false: _RegionRunner) -> Callable[..., list[Any]]:
    def cond(pred: Any, operands: list[Any]) -> list[Any]:
        return (true if bool(pred) else false)(operands)

    return cond


def _limits() -> RunLimits:
    return active_limits() or RunLimits(1 << 62, max_loop_iterations())


def _while_loop(cond: _RegionRunner, body: _RegionRunner, where: str) -> Callable[..., list[Any]]:
    def while_loop(carried: list[Any], additional: list[Any]) -> list[Any]:
        values = list(carried)
        limits = _limits()
        while bool(cond(values + additional)[0]):
            limits.iterate(1, where)
            values = body(values + additional)
        return values

    return while_loop


def _scan(combine: _RegionRunner, where: str) -> Callable[..., list[Any]]:
    def scan(init: list[Any], xs: list[Any], additional: list[Any]) -> list[Any]:
        carry = list(init)
        steps: list[list[Any]] = []
        length = _length(xs)
        _limits().iterate(length, f"{where}, over {length} element(s)")
        for i in range(length):
            out = combine(carry + [x[i] for x in xs] + additional)
            carry, ys = out[: len(init)], out[len(init) :]
            steps.append(ys)
        return carry + _stack(steps, combine.graph.outputs[len(init) :], combine)

    return scan


def _map(body: _RegionRunner, where: str) -> Callable[..., list[Any]]:
    def map_impl(xs: list[Any], args: list[Any]) -> list[Any]:
        length = _length(xs)
        _limits().iterate(length, f"{where}, over {length} element(s)")
        steps = [body([x[i] for x in xs] + args) for i in range(length)]
        return _stack(steps, body.graph.outputs, body)

    return map_impl


def _length(xs: list[Any]) -> int:
    return int(xs[0].shape[0]) if xs else 0


def _stack(steps: list[list[Any]], outputs: Sequence[Any], runner: _RegionRunner) -> list[Any]:
    """Stack per-iteration results along a new dimension 0 (empty tensors for zero iterations)."""
    if steps:
        return [torch.stack([step[j] for step in steps]) for j in range(len(steps[0]))]
    empty = []
    for value in outputs:
        type_ = value.type
        if not isinstance(type_, TensorType) or not type_.is_static:
            raise InterpreterError(f"{runner.where}: zero iterations, and result {value.ref} has no static shape")
        shape = [0] + [int(d) for d in type_.shape]
        empty.append(torch.empty(shape, dtype=getattr(torch, type_.dtype), device=runner.interp.device))
    return empty


__all__ = ["region_kernel"]
