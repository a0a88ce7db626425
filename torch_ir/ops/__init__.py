"""The op registry: one ``OpInfo`` per op type, with every trait torch-ir knows about the op.

``op_info("aten.add.Tensor")`` gives its schema and operand names, purity and effects (side effects with
the reason, mutated and aliased operands, randomness), commutativity, whether it may run on untrusted
input, its shape function, its kernel, its cost model and its canonicalization class. Every other op
table of torch-ir (the interpreter's, the statistics', the passes') reads it. ``register_op`` gives a custom
op the same standing. Importing this package does not import torch: traits that need torch's schema are
computed on first use.

Modules: ``names`` (op type spelling), ``schema`` (torch's overload and schema), ``effects``, ``cost``,
``canonical``, ``python_ops`` (the allowed Python functions), ``info`` (``OpInfo``), ``registry``
(``op_info``, ``register_op``), ``custom`` (``define_op``: a ``torch.library`` op and its registration in one
call), ``spelling`` (did-you-mean for op types and operand names) and ``type_inference`` (result types of a
call).
"""

from torch_ir.ops.cost import CostModel
from torch_ir.ops.custom import define_op
from torch_ir.ops.effects import side_effect_reason
from torch_ir.ops.info import OpEntry, OpInfo
from torch_ir.ops.names import op_name, parse_op_name
from torch_ir.ops.registry import (
    get_entry,
    get_kernel,
    get_shape_fn,
    op_info,
    register_op,
    registered_ops,
    unregister_op,
)
from torch_ir.ops.schema import ArgumentSpec, resolve_op

__all__ = [
    "ArgumentSpec",
    "CostModel",
    "OpEntry",
    "OpInfo",
    "define_op",
    "get_entry",
    "get_kernel",
    "get_shape_fn",
    "op_info",
    "op_name",
    "parse_op_name",
    "register_op",
    "registered_ops",
    "resolve_op",
    "side_effect_reason",
    "unregister_op",
]
