"""``OpInfo``: everything torch-ir knows about one op type, and ``OpEntry``: what a registration declares.

An ``OpInfo`` is built from four sources, the later ones winning: the op's name (its cost model, view
aliasing, canonicalization class, commutativity, the nondeterministic and stride-reading lists), torch's
schema for the overload (arguments, mutated and aliased operands, effects, randomness), the allowed Python
functions (``operator.mul``), and a ``register_op`` call (kernel, shape function, cost, purity,
commutativity, canonicalization class). Traits that need torch's schema are computed on first use, so a
lookup of a name-only trait (statistics, reports) never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from torch_ir.ops.canonical import canonical_class, commutative_condition
from torch_ir.ops.cost import VIEW_OPS, CostModel, cost_model
from torch_ir.ops.effects import (
    STRIDE_READING_OPS,
    UNANNOTATED_ALIAS_OPS,
    is_nondeterministic,
    is_random_op,
    keeps_unused,
    side_effect_reason,
)
from torch_ir.ops.names import op_name, op_namespace
from torch_ir.ops.python_ops import PYTHON_NAMESPACES
from torch_ir.ops.runnable import LIBRARY_OPS, runnable_aten_ops
from torch_ir.ops.schema import (
    ArgumentSpec,
    aliased_operands,
    is_composite,
    mutated_operands,
    resolve_op,
    schema_arguments,
)


@dataclass(frozen=True)
class OpEntry:
    """One ``register_op`` registration: its name (``mylib::op`` or ``mylib::op.overload``) and what it
    declares; None leaves a trait as torch and the built-in tables give it."""

    name: str
    kernel: Callable[..., Any] | None = None
    shape_fn: Callable[..., Any] | None = None
    cost: CostModel | None = None
    commutative: bool | None = None
    pure: bool | None = None
    canonical: str | None = None


@dataclass(frozen=True)
class OpInfo:
    """The traits of one op type (``aten.add.Tensor``, ``operator.mul``, ``mylib.fused.default``).

    Name-only traits are fields; traits from torch's schema (``schema``, ``arguments``, ``mutates``,
    ``aliases``, ``may_alias``, ``side_effect_reason``, ``has_side_effects``, ``random``, ``pure``, ``untrusted_ok``,
    ``kernel``) are properties computed once, on first use. Get one with ``torch_ir.ops.op_info``.
    """

    op_type: str
    namespace: str
    name: str
    cost: CostModel | None = None
    """FLOPs and MACs of one call from the shapes (``torch_ir.ops.cost``); None: no model (uncounted)."""
    view: bool = False
    """Its results alias its first operand: they take no memory of their own."""
    canonical: str | None = None
    """Its canonicalization class (``torch_ir.ops.canonical``): when ``canonicalize`` may remove it."""
    commutative: bool = False
    """Swapping its first two operands gives the same result (see ``commutes`` for conditions)."""
    commutes_when: tuple[tuple[str, Any], ...] = ()
    """``(operand, value)``: operands that must hold these values for the op to commute (add's alpha 1)."""
    nondeterministic: bool = False
    """Its results are not reproducible (random draws, uninitialized memory): compare shapes only."""
    reads_strides: bool = False
    """Its eager result depends on its first operand's strides (the interpreter makes it contiguous)."""
    python_level: bool = False
    """A Python function (``operator.*``, ``math.*``, ``builtins.*``, ``torch.sym_*``), run with bounded
    arguments (``torch_ir.ops.python_ops``)."""
    entry: OpEntry | None = None
    """The ``register_op`` registration that applies to it, if any."""

    @cached_property
    def target(self) -> Any:
        """torch's ``OpOverload``, or the allowed Python function; None when neither exists."""
        return resolve_op(self.op_type)

    @cached_property
    def schema(self) -> Any:
        """torch's ``FunctionSchema`` for the overload, or None when torch does not know it."""
        return getattr(self.target, "_schema", None)

    @cached_property
    def arguments(self) -> tuple[ArgumentSpec, ...] | None:
        """The schema's arguments (name, keyword-only, default), or None when there is no schema."""
        return None if self.schema is None else schema_arguments(self.schema)

    @cached_property
    def mutates(self) -> tuple[str, ...]:
        """The operands the op writes, by schema name (``("self",)`` for ``aten.add_.Tensor``)."""
        return () if self.schema is None else mutated_operands(self.schema)

    @cached_property
    def aliases(self) -> tuple[str, ...]:
        """The operands a result may alias, by schema name (``("self",)`` for ``aten.view.default``)."""
        return () if self.schema is None else aliased_operands(self.schema)

    @cached_property
    def may_alias(self) -> bool:
        """Whether a result may share storage with a tensor operand: the schema says so (a view), the op is
        known to (``_unsafe_view``, ``type_as``: ``UNANNOTATED_ALIAS_OPS``), its kernel is composite (it
        calls other ops, which may hand back their input), or torch cannot tell (no schema)."""
        if self.aliases or self.view or self.name in UNANNOTATED_ALIAS_OPS or self.schema is None:
            return True
        if self.entry is not None and self.entry.kernel is not None:
            return True
        return is_composite(self.target)

    @cached_property
    def side_effect_reason(self) -> str:
        """Why running the op would reach outside its tensors (file I/O, printing, RNG state ...), or ''."""
        return side_effect_reason(self.op_type, self.schema)

    @cached_property
    def has_side_effects(self) -> bool:
        """A node of this type stays even when nothing reads its results (unknown ops do, conservatively)."""
        if self.entry is not None and self.entry.pure is not None:
            return not self.entry.pure
        return keeps_unused(self.op_type, self.target)

    @cached_property
    def random(self) -> bool:
        """Two nodes of this type with equal operands may give different results."""
        if self.entry is not None and self.entry.pure:
            return False
        return is_random_op(self.op_type, self.target)

    @property
    def pure(self) -> bool:
        """Neither side-effecting nor random: safe to remove when unused, merge, or hoist."""
        return not self.has_side_effects and not self.random

    @cached_property
    def untrusted_ok(self) -> bool:
        """Whether the op may run from an IR read from a file (``torch_ir.ops.runnable``): an ATen op of the
        allow-list with no effect outside its tensors, an allowed Python function, or an op given a kernel
        with ``register_op`` or defined with ``define_op`` (the plugin the user named vouches for it)."""
        if self.entry is not None and self.entry.kernel is not None:
            return True
        if self.python_level:
            return self.target is not None
        listed = self.op_type in runnable_aten_ops() or self.op_type in LIBRARY_OPS
        return listed and self.schema is not None and not self.side_effect_reason

    @cached_property
    def kernel(self) -> Callable[..., Any] | None:
        """What runs the op: the registered kernel, else torch's overload, else the allowed Python function."""
        if self.entry is not None and self.entry.kernel is not None:
            return self.entry.kernel
        target = self.target
        return None if target is None else getattr(target, "_op", target)

    @property
    def shape_fn(self) -> Callable[..., Any] | None:
        """The registered shape function, ``shape_fn(input_types, attrs)``; None: torch's meta kernel types it."""
        return None if self.entry is None else self.entry.shape_fn

    @property
    def known(self) -> bool:
        """Whether torch-ir can run the op: a registered kernel, a torch overload or an allowed Python function."""
        return self.kernel is not None

    def commutes(self, operands: Mapping[str, Any]) -> bool:
        """Whether the op's first two operands may be swapped for a node with these operands by name (an
        absent operand holds its default)."""
        return self.commutative and all(operands.get(k, v) == v for k, v in self.commutes_when)


def describe_op(op_type: str, entry: OpEntry | None = None) -> OpInfo:
    """The ``OpInfo`` of ``op_type`` from the built-in tables and ``entry`` (a registration, or None)."""
    name = op_name(op_type)
    condition = commutative_condition(op_type)
    commutative = condition is not None
    cost = cost_model(name)
    canonical = canonical_class(op_type)
    if entry is not None:
        if entry.commutative is not None:
            commutative = entry.commutative
            condition = condition if commutative else None
        cost = entry.cost or cost
        canonical = entry.canonical or canonical
    return OpInfo(
        op_type=op_type,
        namespace=op_namespace(op_type),
        name=name,
        cost=cost,
        view=name in VIEW_OPS,
        canonical=canonical,
        commutative=commutative,
        commutes_when=condition or (),
        nondeterministic=is_nondeterministic(op_type),
        reads_strides=op_type in STRIDE_READING_OPS,
        python_level=op_namespace(op_type) in PYTHON_NAMESPACES,
        entry=entry,
    )


__all__ = ["OpEntry", "OpInfo", "describe_op"]
