"""Bounds an op call must keep, checked on its real arguments just before it runs.

- Views that take explicit sizes, strides and an offset (``as_strided``, ``_reshape_alias``, inductor's
  ``_reinterpret_tensor`` when a caller allows it) may only address elements of their operand's storage:
  ``strided_view_problem`` says why a call would read or write outside it.
- Ops whose result size depends on their operands' values (``bincount``'s ``minlength`` and largest value,
  ``repeat_interleave``'s repeats, a factory's ``size`` computed from data) cannot be sized by a dry run on
  fake tensors: ``result_elements`` gives the number of elements of the result from the real operands, so
  the memory budget is checked before the kernel allocates it.

Arguments are given by schema name (``{"self": tensor, "size": [2, 3], ...}``). Nothing here imports torch:
tensors are read through their methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from torch_ir.ops.names import op_name, op_namespace

STRIDED_VIEWS: dict[tuple[str, str], tuple[str, str, str, bool]] = {
    ("aten", "as_strided"): ("size", "stride", "storage_offset", False),
    ("aten", "as_strided_"): ("size", "stride", "storage_offset", False),
    ("aten", "as_strided_copy"): ("size", "stride", "storage_offset", False),
    ("aten", "as_strided_scatter"): ("size", "stride", "storage_offset", False),
    ("aten", "_reshape_alias"): ("size", "stride", "", False),
    ("aten", "_reshape_alias_copy"): ("size", "stride", "", False),
    ("inductor", "_reinterpret_tensor"): ("size", "stride", "offset_increment", True),
}
"""``(namespace, op)`` -> the names of its size, stride and offset arguments, and whether the offset is
relative to the operand's own offset."""


def is_strided_view(op_type: str) -> bool:
    """Whether ``op_type`` addresses its operand's storage by explicit sizes, strides and offset."""
    return (op_namespace(op_type), op_name(op_type)) in STRIDED_VIEWS


def strided_view_problem(op_type: str, arguments: Mapping[str, Any]) -> str:
    """Why the call would address elements outside its operand's storage ('' when it stays inside)."""
    size_name, stride_name, offset_name, relative = STRIDED_VIEWS[(op_namespace(op_type), op_name(op_type))]
    tensor = arguments.get("self")
    size, stride = arguments.get(size_name), arguments.get(stride_name)
    if tensor is None or not hasattr(tensor, "untyped_storage"):
        return "its operand is not a tensor"
    if not _int_list(size) or not _int_list(stride) or len(size) != len(stride):
        return f"{size_name} and {stride_name} must be lists of integers of the same length"
    if any(d < 0 for d in size) or any(s < 0 for s in stride):
        return f"negative {size_name} or {stride_name}: {size}, {stride}"
    offset = arguments.get(offset_name) if offset_name else None
    base = int(tensor.storage_offset())
    if offset is None:
        offset = base
    elif not isinstance(offset, int) or isinstance(offset, bool):
        return f"{offset_name} must be an integer"
    elif relative:
        offset += base
    if offset < 0:
        return f"the offset {offset} is negative"
    capacity = int(tensor.untyped_storage().nbytes()) // max(int(tensor.element_size()), 1)
    if 0 in size:
        return "" if offset <= capacity else f"the offset {offset} is past the end of a storage of {capacity} elements"
    extent = offset + 1 + sum((d - 1) * s for d, s in zip(size, stride))
    if extent > capacity:
        return (
            f"sizes {size}, strides {stride} and offset {offset} reach element {extent - 1} of a storage of "
            f"{capacity} elements"
        )
    return ""


def _int_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _numel(tensor: Any) -> int:
    return int(tensor.numel()) if hasattr(tensor, "numel") else 0


def _bincount(arguments: Mapping[str, Any]) -> int:
    values = arguments.get("self")
    minlength = arguments.get("minlength") or 0
    largest = int(values.max()) + 1 if values is not None and _numel(values) else 0
    return max(int(minlength), largest, 0)


def _repeats_total(repeats: Any, count: int) -> int:
    if isinstance(repeats, int):
        return max(repeats, 0) * count
    if _numel(repeats) == 1:
        return max(int(repeats.reshape(-1)[0]), 0) * count
    return int(repeats.clamp(min=0).sum()) if _numel(repeats) else 0


def _repeat_interleave(arguments: Mapping[str, Any]) -> int:
    self_, repeats = arguments.get("self"), arguments.get("repeats")
    if repeats is None:
        return 0
    if self_ is None:  # repeat_interleave.Tensor: the repeats alone, each index repeated that often
        return _repeats_total(repeats, 1)
    scalar = isinstance(repeats, int) or _numel(repeats) == 1
    dim = arguments.get("dim")
    if dim is None:
        return _repeats_total(repeats, _numel(self_) if scalar else 1)
    length = int(self_.shape[dim]) if self_.dim() else 1
    rest = _numel(self_) // length if length else 0
    return rest * _repeats_total(repeats, length if scalar else 1)


def _repeat(arguments: Mapping[str, Any]) -> int:
    repeats = arguments.get("repeats")
    if not _int_list(repeats):
        return 0
    return _numel(arguments.get("self")) * math.prod(max(r, 0) for r in repeats)


def _sized(arguments: Mapping[str, Any]) -> int:
    size = arguments.get("size")
    return math.prod(max(d, 0) for d in size) if _int_list(size) else 0


FACTORIES = ("empty", "empty_strided", "full", "ones", "zeros", "rand", "randn", "randint")
"""Ops that allocate the ``size`` they are given: from a file that size may come from data (``ones(item())``)."""

RESULT_ELEMENTS: dict[tuple[str, str], Callable[[Mapping[str, Any]], int]] = {
    ("aten", "bincount"): _bincount,
    ("aten", "repeat_interleave"): _repeat_interleave,
    ("aten", "repeat"): _repeat,
    **{("aten", name): _sized for name in FACTORIES},
    **{("aten", f"new_{name}"): _sized for name in ("empty", "full", "ones", "zeros")},
}
"""``(namespace, op)`` -> the number of elements its result will have, from its real arguments by name."""


def result_elements(op_type: str, arguments: Mapping[str, Any]) -> int | None:
    """How many elements the call's result will have, for ops whose size depends on their operands' values
    (``RESULT_ELEMENTS``); None for other ops."""
    rule = RESULT_ELEMENTS.get((op_namespace(op_type), op_name(op_type)))
    return None if rule is None else rule(arguments)


__all__ = [
    "RESULT_ELEMENTS",
    "STRIDED_VIEWS",
    "is_strided_view",
    "result_elements",
    "strided_view_problem",
]
