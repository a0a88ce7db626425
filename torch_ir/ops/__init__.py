"""The op registry: kernels and shape functions for ops torch cannot run or describe by itself."""

from torch_ir.ops.registry import OpEntry, get_kernel, get_shape_fn, register_op, registered_ops, unregister_op

__all__ = ["OpEntry", "get_kernel", "get_shape_fn", "register_op", "registered_ops", "unregister_op"]


def infer_result_types(graph, op_type, args, attrs):  # type: ignore[no-untyped-def]
    """The result types of ``op_type`` on these operands (moves into the op registry)."""
    from torch_ir.passes.annotate_shapes import infer_result_types as _infer

    return _infer(graph, op_type, args, attrs)
