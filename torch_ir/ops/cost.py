"""Cost models: how many FLOPs and MACs one call of an op costs, from its operand and result shapes.

Conventions, so figures can be checked by hand: a multiply-accumulate (MAC) counts as 2 FLOPs; a bias adds
one FLOP per output element; elementwise ops cost one FLOP per output element; softmax and normalizations
cost a few per element (``PER_ELEMENT``); data movement (views, copies, indexing, constructors) costs
nothing. Models are found by the op's name in any namespace (``mm`` for ``aten.mm.default``).

On the memory side, a view op's results alias its first operand (``VIEW_OPS``): they take no memory of
their own, which the activation-memory figure of ``torch_ir.analysis.statistics`` counts on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Shape = tuple[int, ...]
CostFunction = Callable[[Sequence[Shape], Sequence[Shape], Mapping[str, Any]], "tuple[int, int] | int"]
"""``cost(input_shapes, output_shapes, attrs)``: FLOPs, or ``(FLOPs, MACs)``, of one call. Shapes are
static (the caller binds symbolic dims first); an ``IndexError`` or ``TypeError`` means the shapes do not fit
the model (the op is then reported as uncounted)."""


@dataclass(frozen=True)
class CostModel:
    """The cost of one call of an op: ``free`` (0 FLOPs whatever the shapes), or a ``function`` of the shapes.

    ``custom`` marks a model given to ``register_op``: when it fails, the caller says which op's model did.
    """

    kind: str
    function: CostFunction | None = None
    custom: bool = False

    @property
    def free(self) -> bool:
        """Whether the op costs nothing (data movement, views, constructors)."""
        return self.function is None

    def __call__(self, inputs: Sequence[Shape], outputs: Sequence[Shape], attrs: Mapping[str, Any]) -> tuple[int, int]:
        """``(FLOPs, MACs)`` of one call on these static shapes."""
        if self.function is None:
            return 0, 0
        result = self.function(inputs, outputs, attrs)
        if isinstance(result, tuple):
            flops, macs = result
            return int(flops), int(macs)
        return int(result), 0


FREE = CostModel("free")
"""Data movement, views and constructors: 0 FLOPs."""


def custom_cost(function: CostFunction) -> CostModel:
    """A user's cost function (``register_op(..., cost=fn)``) as a model."""
    return CostModel("custom", function, custom=True)


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def _first(outputs: Sequence[Shape]) -> Shape:
    return outputs[0] if outputs else ()


def _linear(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> tuple[int, int]:
    out = _first(outs)
    macs = _numel(out) * ins[0][-1]
    bias = _numel(out) if len(ins) > 2 else 0
    return 2 * macs + bias, macs


def _matmul(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> tuple[int, int]:
    a = ins[0]
    macs = _numel(_first(outs)) * (a[-1] if a else 1)
    return 2 * macs, macs


def _add_matmul(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> tuple[int, int]:
    out = _first(outs)
    mat1, _ = ins[1], ins[2]  # addmm(input, mat1, mat2): both matrices must be there
    macs = _numel(out) * mat1[-1]
    return 2 * macs + _numel(out), macs


def _addbmm(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> tuple[int, int]:
    macs = math.prod(ins[1]) * ins[2][-1]
    return 2 * macs + _numel(_first(outs)), macs


def _conv(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> tuple[int, int]:
    out = _first(outs)
    macs = _numel(out) * math.prod(ins[1][1:])
    bias = _numel(out) if len(ins) > 2 else 0
    return 2 * macs + bias, macs


def _attention(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> tuple[int, int]:
    q, k, v = ins[0], ins[1], ins[2]
    batch = math.prod(q[:-2])
    qk = batch * q[-2] * k[-2] * q[-1]
    av = batch * q[-2] * k[-2] * v[-1]
    return 2 * (qk + av) + 5 * batch * q[-2] * k[-2], qk + av


def _reduction(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> tuple[int, int]:
    return (_numel(ins[0]) if ins else 0), 0


def per_element(flops: int) -> CostModel:
    """``flops`` FLOPs per element of the first result."""

    def cost(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> tuple[int, int]:
        return flops * _numel(_first(outs)), 0

    return CostModel("elementwise" if flops == 1 else "per-element", cost)


MATMUL_OPS = frozenset({"mm", "bmm", "matmul", "mv", "dot"})
ADD_MATMUL_OPS = frozenset({"addmm", "baddbmm", "addmv"})
CONV_OPS = frozenset(
    {
        "convolution",
        "conv1d",
        "conv2d",
        "conv3d",
        "_convolution",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
    }
)
ATTENTION_OPS = frozenset(
    {
        "scaled_dot_product_attention",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
    }
)
PER_ELEMENT: dict[str, int] = {
    "softmax": 5,
    "_softmax": 5,
    "log_softmax": 5,
    "_log_softmax": 5,
    "_safe_softmax": 5,
    "layer_norm": 5,
    "native_layer_norm": 5,
    "group_norm": 5,
    "native_group_norm": 5,
    "batch_norm": 2,
    "_native_batch_norm_legit_no_training": 2,
    "_native_batch_norm_legit": 5,
    "native_batch_norm": 5,
    "instance_norm": 5,
    "rms_norm": 4,
    "_fused_rms_norm": 4,
    "gelu": 8,
    "silu": 4,
    "sigmoid": 4,
    "tanh": 4,
    "erf": 4,
    "exp": 1,
    "log": 1,
}
"""FLOPs per output element of ops that do a little more than one operation per element."""
ELEMENTWISE = frozenset(
    {
        "add",
        "sub",
        "rsub",
        "mul",
        "div",
        "neg",
        "abs",
        "relu",
        "relu_",
        "pow",
        "sqrt",
        "rsqrt",
        "reciprocal",
        "where",
        "masked_fill",
        "clamp",
        "clamp_min",
        "clamp_max",
        "hardtanh",
        "leaky_relu",
        "elu",
        "mish",
        "hardswish",
        "hardsigmoid",
        "softplus",
        "maximum",
        "minimum",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "logical_and",
        "logical_or",
        "logical_not",
        "bitwise_and",
        "bitwise_or",
        "bitwise_not",
        "sin",
        "cos",
        "floor",
        "ceil",
        "round",
        "sign",
        "square",
        "addcmul",
        "addcdiv",
        "lerp",
        "threshold",
        "tril",
        "triu",
        "cumsum",
        "cumprod",
        "fill",
        "zeros_like",
        "ones_like",
        "full_like",
        "dropout",
        "logsumexp",
        "diff",
    }
)
"""Ops that cost one FLOP per output element."""
REDUCTIONS = frozenset(
    {
        "sum",
        "mean",
        "amax",
        "amin",
        "max",
        "min",
        "var",
        "std",
        "var_mean",
        "argmax",
        "argmin",
        "prod",
        "norm",
        "linalg_vector_norm",
        "any",
        "all",
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "max_pool2d_with_indices",
        "_adaptive_avg_pool2d",
        "adaptive_max_pool2d",
    }
)
"""Reductions and pooling: one FLOP per element of the first operand."""
VIEW_OPS = frozenset(
    {
        "view",
        "_unsafe_view",
        "reshape",
        "transpose",
        "permute",
        "expand",
        "unsqueeze",
        "squeeze",
        "flatten",
        "unflatten",
        "t",
        "alias",
        "slice",
        "select",
        "narrow",
        "split",
        "split_with_sizes",
        "chunk",
        "unbind",
        "detach",
        "expand_as",
        "view_as",
        "as_strided",
        "movedim",
        "reshape_as",
    }
)
"""Ops whose results alias their first operand (no new memory for the activation peak)."""
FREE_OPS = VIEW_OPS | frozenset(
    {
        "_assert_scalar",
        "_assert_tensor_metadata",
        "_to_copy",
        "_unsafe_index",
        "arange",
        "cat",
        "clone",
        "constant_pad_nd",
        "contiguous",
        "copy",
        "copy_",
        "embedding",
        "empty",
        "flip",
        "full",
        "gather",
        "getitem",
        "index",
        "index_put",
        "index_select",
        "lift_fresh_copy",
        "masked_select",
        "new_empty",
        "new_ones",
        "new_zeros",
        "ones",
        "pad",
        "repeat",
        "repeat_interleave",
        "roll",
        "scalar_tensor",
        "scatter",
        "stack",
        "sym_constrain_range_for_size",
        "sym_numel",
        "sym_size",
        "to",
        "type_as",
        "upsample_nearest2d",
        "zeros",
    }
)
"""Ops counted as 0 FLOPs: data movement, views, constructors."""


def _models() -> dict[str, CostModel]:
    """Op name -> model; where an op is in two tables, the first in this order wins: free, linear, matmul,
    convolution, attention, per-element, elementwise, reductions (``einsum`` has none: uncounted)."""
    models: dict[str, CostModel] = dict.fromkeys(REDUCTIONS, CostModel("reduction", _reduction))
    models.update(dict.fromkeys(ELEMENTWISE, per_element(1)))
    models.update({name: per_element(flops) for name, flops in PER_ELEMENT.items()})
    models.update(dict.fromkeys(ATTENTION_OPS, CostModel("attention", _attention)))
    models.update(dict.fromkeys(CONV_OPS, CostModel("convolution", _conv)))
    models.update(dict.fromkeys(MATMUL_OPS, CostModel("matmul", _matmul)))
    models.update(dict.fromkeys(ADD_MATMUL_OPS, CostModel("matmul", _add_matmul)))
    models["addbmm"] = CostModel("matmul", _addbmm)
    models["linear"] = CostModel("linear", _linear)
    models.update(dict.fromkeys(FREE_OPS, FREE))
    return models


COST_MODELS: dict[str, CostModel] = _models()
"""The built-in cost model of each op name."""


def cost_model(name: str) -> CostModel | None:
    """The built-in model for the op named ``name`` (``mm``), or None when there is none."""
    return COST_MODELS.get(name)


__all__ = [
    "COST_MODELS",
    "ELEMENTWISE",
    "FREE",
    "FREE_OPS",
    "PER_ELEMENT",
    "REDUCTIONS",
    "VIEW_OPS",
    "CostFunction",
    "CostModel",
    "cost_model",
    "custom_cost",
    "per_element",
]
