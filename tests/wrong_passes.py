"""Deliberately wrong passes, written as a user writes a plugin (``--plugin tests.wrong_passes``).

Each one produces an IR that is wrong in a way a weak verification lets through: it is right for
all-equal token ids, for identity norms, for zero biases, for the test input's batch size or seed, for
the branch the test input takes, or it reaches into the weights through ops that alias without saying so.
``tests/test_wrong_irs.py`` checks that ``torch-ir verify`` (and ``--generate``) FAILS every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch_ir import Graph, Node, Pass, PassContext, PassResult, Value, Weight, register_pass
from torch_ir.ir.types import TensorType
from torch_ir.passes.rewrite import Op, PatternRewritePass, RewriteRule, Var


def _module_class(node: Node) -> str:
    stack = node.meta.get("module_stack") or []
    return str(stack[-1][1]).rsplit(".", 1)[-1] if stack else ""


def _module_path(node: Node) -> str:
    stack = node.meta.get("module_stack") or []
    return str(stack[-1][0]) if stack else ""


@register_pass
@dataclass(frozen=True)
class DropModules(Pass):
    """Make every module of the given classes an identity: its output's readers read its input instead
    (right while the module is an identity: BatchNorm at init, a norm whose statistics do nothing). With
    ``function``, only in that function's body (a block that ``outline-repeated-blocks`` made a function)."""

    name: ClassVar[str] = "wrong-drop-modules"
    classes: str = "BatchNorm2d"
    function: str = ""

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        if self.function and ctx.function != self.function:
            return PassResult(graph, False)
        wanted = set(self.classes.split(","))
        groups: dict[str, list[Node]] = {}
        for node in graph.nodes:
            if _module_class(node) in wanted:
                groups.setdefault(_module_path(node), []).append(node)
        modified = False
        for nodes in groups.values():
            inside = {id(v) for n in nodes for v in n.outputs}
            sources = [
                v
                for n in nodes
                for v in n.inputs
                if id(v) not in inside and not isinstance(v, Weight) and isinstance(v.type, TensorType)
            ]
            members = {id(n) for n in nodes}
            results = [
                v
                for n in nodes
                for v in n.outputs
                if graph.is_output(v) or any(id(u) not in members for u in graph.users(v))
            ]
            if not sources or len(results) != 1 or results[0].type != sources[0].type:
                continue
            graph.replace_all_uses_with(results[0], sources[0])
            modified = True
        return PassResult(graph, modified)


@register_pass
@dataclass(frozen=True)
class AttentionAsValue(Pass):
    """Replace scaled-dot-product attention by its value operand (right when every query attends to
    identical rows, as all-equal token ids make them)."""

    name: ClassVar[str] = "wrong-attention-as-value"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        modified = False
        for node in graph.nodes:
            if node.op_type != "aten.scaled_dot_product_attention.default":
                continue
            value, out = node.operand("value"), node.outputs[0]
            if value.shape != out.shape:
                repeat = out.shape[1] // value.shape[1]
                value = graph.create_op("aten.repeat_interleave.self_int", value, repeat, dim=1, after=node).output
            graph.replace_all_uses_with(out, value)
            modified = True
        return PassResult(graph, modified)


@register_pass
@dataclass(frozen=True)
class FillInput(Pass):
    """Read a constant instead of an input (right for inputs that are all that constant: zero ids)."""

    name: ClassVar[str] = "wrong-fill-input"
    input: str = "ids"
    fill: int = 0

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        value = next(v for v in graph.inputs if v.name == self.input)
        filled = graph.create_op("aten.full_like.default", value, self.fill, before=graph.nodes[0])
        for user in graph.users(value):
            if user is not filled:  # the constant still takes its shape from the input
                args = [
                    filled.output
                    if a is value
                    else [filled.output if i is value else i for i in a]
                    if isinstance(a, list)
                    else a
                    for a in user.args
                ]
                graph.set_args(user, args)
        return PassResult(graph, True)


@register_pass
@dataclass(frozen=True)
class ClampIds(Pass):
    """Index embeddings with ``ids % high`` (right for ids below ``high``: small or zero test ids)."""

    name: ClassVar[str] = "wrong-clamp-ids"
    high: int = 256

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        modified = False
        for node in graph.nodes:
            if node.op_type == "aten.embedding.default":
                ids = node.operand("indices")
                wrapped = graph.create_op("aten.remainder.Scalar", ids, self.high, before=node).output
                node.set_operand("indices", wrapped)
                modified = True
        return PassResult(graph, modified)


@register_pass
@dataclass(frozen=True)
class DropBiases(Pass):
    """Drop the bias of every linear and addmm (right while biases are zero, as transformers inits them)."""

    name: ClassVar[str] = "wrong-drop-biases"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        modified = False
        for node in graph.nodes:
            if node.op_type == "aten.linear.default" and node.operand("bias") is not None:
                node.set_operand("bias", None)
                modified = True
            elif node.op_type == "aten.addmm.default":
                mm = graph.create_op("aten.mm.default", node.operand("mat1"), node.operand("mat2"), before=node)
                graph.replace_all_uses_with(node.outputs[0], mm.output)
                modified = True
        return PassResult(graph, modified)


@register_pass
@dataclass(frozen=True)
class SwapOutputs(Pass):
    """Swap the first two outputs of the same type (right when they happen to be equal)."""

    name: ClassVar[str] = "wrong-swap-outputs"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        outputs = list(graph.outputs)
        if len(outputs) < 2 or outputs[0].type != outputs[1].type:
            return PassResult(graph, False)
        outputs[0], outputs[1] = outputs[1], outputs[0]
        graph.set_outputs(outputs)
        return PassResult(graph, True)


@register_pass
@dataclass(frozen=True)
class DropStateUpdates(Pass):
    """Forget every state update (right for one call: outputs do not show a buffer that was not written)."""

    name: ClassVar[str] = "wrong-drop-state-updates"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        modified = bool(graph.state_updates)
        graph.set_state_updates([])
        return PassResult(graph, modified)


@register_pass
@dataclass(frozen=True)
class SwapCondBranches(Pass):
    """Exchange the true and false regions of every cond (right when both branches compute the same)."""

    name: ClassVar[str] = "wrong-swap-cond-branches"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        modified = False
        for node in graph.nodes:
            if node.op_type == "higher_order.cond":
                node.regions.reverse()
                modified = True
        return PassResult(graph, modified)


@register_pass
@dataclass(frozen=True)
class StaticBatch(Pass):
    """Replace every size read from an input (``sym_size``) in a shape list by ``size`` (right only for the
    test input's batch size)."""

    name: ClassVar[str] = "wrong-static-batch"
    size: int = 2

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        modified = False
        for node in graph.nodes:
            for name, operand in node.operands.items():
                if isinstance(operand, list) and any(_is_sym_size(v) for v in operand):
                    node.set_operand(name, [self.size if _is_sym_size(v) else v for v in operand])
                    modified = True
        return PassResult(graph, modified)


def _is_sym_size(value: object) -> bool:
    return isinstance(value, Value) and value.producer is not None and value.producer.op_type == "aten.sym_size.int"


@register_pass
@dataclass(frozen=True)
class ZeroWeights(Pass):
    """First thing, write zeros into every floating weight through ``op`` (an op whose schema does not say
    that its result aliases its operand), then compute as before: against eager on the same tensors, both
    sides would compute with zeros."""

    name: ClassVar[str] = "wrong-zero-weights"
    op: str = "aten._unsafe_view.default"
    function: str = ""
    """When given: in that function's body only, zero its weight inputs (the weights its calls pass)."""

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        if self.function and ctx.function != self.function:
            return PassResult(graph, False)
        first = graph.nodes[0]
        targets = [v for v in graph.inputs if "weight" in v.name] if self.function else list(graph.weights.values())
        for weight in targets:
            if not isinstance(weight.type, TensorType) or weight.type.dtype not in ("float32", "float16", "bfloat16"):
                continue
            if not weight.type.shape:
                continue
            view = self._view(graph, weight, first)
            graph.create_op("aten.zero_.default", view, before=first)
        return PassResult(graph, True)

    def _view(self, graph: Graph, weight: Value, before: Node) -> Value:
        numel = 1
        for d in weight.type.shape:  # type: ignore[union-attr]
            numel *= int(d)
        if self.op == "aten._unsafe_view.default":
            return graph.create_op(self.op, weight, [numel], before=before).output
        if self.op == "aten.type_as.default":
            return graph.create_op(self.op, weight, weight, before=before).output
        if self.op == "aten.lift.default":
            return graph.create_op(self.op, weight, before=before).output
        if self.op == "detach-chain":
            once = graph.create_op("aten.detach.default", weight, before=before).output
            return graph.create_op("aten.detach.default", once, before=before).output
        if self.op == "inductor._reinterpret_tensor.default":
            return graph.create_op(self.op, weight, [numel], [1], before=before).output
        raise ValueError(f"wrong-zero-weights: unknown op {self.op}")


@register_pass
@dataclass(frozen=True)
class RelabelWeight(Pass):
    """Call the weights whose names contain ``name`` non-persistent buffers (which verification used to take
    from the model, not from the given weights)."""

    name: ClassVar[str] = "wrong-relabel-weight"
    weight: str = "weight"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        modified = False
        for weight in graph.weights.values():
            if self.weight in weight.name:
                weight.kind, weight.persistent = "buffer", False
                modified = True
        return PassResult(graph, modified)


@register_pass
@dataclass(frozen=True)
class ReluAsIdentity(PatternRewritePass):
    """Drop every relu (right for inputs that make every pre-activation positive), as a rewrite rule."""

    name: ClassVar[str] = "wrong-relu-as-identity"

    def patterns(self) -> list[RewriteRule]:
        x = Var("x")
        return [RewriteRule(Op("aten.relu.default", x), x)]
