"""The op registry: kernels and shape functions for ops torch cannot run or describe by itself."""

from torch_ir.ops.registry import OpEntry, get_kernel, get_shape_fn, register_op, registered_ops, unregister_op

__all__ = ["OpEntry", "get_kernel", "get_shape_fn", "register_op", "registered_ops", "unregister_op"]
