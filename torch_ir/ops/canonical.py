"""Canonicalization traits: which ops are no-ops a backend never wants, and which ops commute.

Each op torch.export leaves in but ``canonicalize`` removes has a class that says when it is a no-op:

- ``assert``: a metadata check (``aten._assert_tensor_metadata``), removed when asked;
- ``identity``: always its first operand under value semantics (``alias``, ``contiguous``, ``detach``);
- ``copy``: its first operand when it keeps the memory format (``clone``);
- ``same-type``: its first operand when the result type equals the operand type (``to``, ``_to_copy``);
- ``same-shape``: its first operand when that has a static shape equal to the result's (``view``, ``reshape``);
- ``dropout``: its first operand in eval mode or with ``p=0``, when its mask is unused.

``commutative``: swapping the first two operands gives the same result (for ``add.Tensor``, when ``alpha``
is 1: ``COMMUTATIVE`` gives the operands that must hold their default for the op to commute).
"""

from __future__ import annotations

from typing import Any

ASSERT = "assert"
IDENTITY = "identity"
COPY = "copy"
SAME_TYPE = "same-type"
SAME_SHAPE = "same-shape"
DROPOUT = "dropout"
CANONICAL_CLASSES = (ASSERT, IDENTITY, COPY, SAME_TYPE, SAME_SHAPE, DROPOUT)
"""Every canonicalization class an op may have."""

CANONICAL_OPS: dict[str, str] = {
    "aten._assert_tensor_metadata.default": ASSERT,
    **dict.fromkeys(
        (
            "aten.alias.default",
            "aten.lift_fresh_copy.default",
            "aten.contiguous.default",
            "aten.detach.default",
            "aten.lift_fresh.default",
        ),
        IDENTITY,
    ),
    "aten.clone.default": COPY,
    **dict.fromkeys(
        (
            "aten.to.dtype",
            "aten.to.dtype_layout",
            "aten.to.device",
            "aten.to.other",
            "aten._to_copy.default",
            "aten.type_as.default",
        ),
        SAME_TYPE,
    ),
    **dict.fromkeys(
        (
            "aten.view.default",
            "aten.reshape.default",
            "aten.expand.default",
            "aten._unsafe_view.default",
            "aten.expand_as.default",
            "aten.view_as.default",
            "aten.reshape_as.default",
        ),
        SAME_SHAPE,
    ),
    **dict.fromkeys(
        (
            "aten.dropout.default",
            "aten.feature_dropout.default",
            "aten.alpha_dropout.default",
            "aten.native_dropout.default",
        ),
        DROPOUT,
    ),
}
"""The canonicalization class of each built-in op that has one."""

COMMUTATIVE: dict[str, dict[str, Any]] = {
    "aten.add.Tensor": {"alpha": 1},
    **{
        op_type: {}
        for op_type in (
            "aten.mul.Tensor",
            "aten.maximum.default",
            "aten.minimum.default",
            "aten.fmax.default",
            "aten.fmin.default",
            "aten.logical_and.default",
            "aten.logical_or.default",
            "aten.logical_xor.default",
            "aten.bitwise_and.Tensor",
            "aten.bitwise_or.Tensor",
            "aten.bitwise_xor.Tensor",
            "aten.eq.Tensor",
            "aten.ne.Tensor",
            "operator.add",
            "operator.mul",
            "operator.and_",
            "operator.or_",
            "operator.xor",
            "operator.eq",
            "operator.ne",
            "torch.sym_max",
            "torch.sym_min",
        )
    },
}
"""Ops whose first two operands commute, with the operands that must hold these values for it (absent: none)."""


def canonical_class(op_type: str) -> str | None:
    """The canonicalization class of ``op_type`` (``CANONICAL_CLASSES``), or None."""
    return CANONICAL_OPS.get(op_type)


def commutative_condition(op_type: str) -> tuple[tuple[str, Any], ...] | None:
    """``(operand, value)`` pairs under which ``op_type`` commutes (``()``: always), or None: it does not."""
    condition = COMMUTATIVE.get(op_type)
    return None if condition is None else tuple(condition.items())


__all__ = [
    "ASSERT",
    "CANONICAL_CLASSES",
    "CANONICAL_OPS",
    "COMMUTATIVE",
    "COPY",
    "DROPOUT",
    "IDENTITY",
    "SAME_SHAPE",
    "SAME_TYPE",
    "canonical_class",
    "commutative_condition",
]
