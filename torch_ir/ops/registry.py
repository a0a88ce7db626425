"""The op registry: ``op_info(op_type)`` for every op, and ``register_op`` for ops torch cannot run or describe.

``op_info`` builds an op's ``OpInfo`` once (from its name, torch's schema, and the registration that
applies) and caches it; a registration clears the cache. ``register_op`` gives an op, typically a fused
op that a user pass creates or a ``torch.library`` op with only a fake kernel, standing everywhere: a
kernel for the interpreter, a shape function for ``create_op`` and ``annotate-shapes``, a cost model for
the statistics, purity for ``eliminate-dead-nodes``, ``cse`` and ``hoist-weights``, and traits for the
rewriter and ``canonicalize``::

    register_op("mylib::fused_gelu", kernel=my_kernel, shape_fn=my_shape_fn, cost=my_cost, pure=True)

Names are accepted as ``"mylib::my_op"``, ``"mylib::my_op.overload"``, ``"mylib.my_op"`` or
``"mylib.my_op.default"`` (the IR's ``op_type``); a registration without an overload applies to every
overload of the op. Kernels are called like the op: with the arguments its torch schema lists (positional
in schema order, keyword-only ones by name), or, for an op torch does not know, as
``kernel(*node_args, **node_attrs)``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from torch_ir.errors import TorchIRError
from torch_ir.ops.canonical import CANONICAL_CLASSES
from torch_ir.ops.cost import CostFunction, CostModel, custom_cost
from torch_ir.ops.info import OpEntry, OpInfo, describe_op
from torch_ir.ops.names import display_name, parse_op_name

_ENTRIES: dict[tuple[str, str, str | None], OpEntry] = {}
_LOCK = threading.Lock()
_GENERATION = [0]


def register_op(
    name: str,
    kernel: Callable[..., Any] | None = None,
    shape_fn: Callable[..., Any] | None = None,
    *,
    cost: CostFunction | CostModel | None = None,
    commutative: bool | None = None,
    pure: bool | None = None,
    canonical: str | None = None,
    replace: bool = False,
) -> OpEntry:
    """Register what torch-ir should know about ``name``; return the entry.

    - ``kernel``: what the interpreter runs;
    - ``shape_fn(input_types, attrs)``: the result type(s), for ``create_op`` and ``annotate-shapes``;
    - ``cost(input_shapes, output_shapes, attrs)``: FLOPs, or ``(FLOPs, MACs)``, of one call (statistics);
    - ``pure``: True lets passes remove it when unused, merge duplicates and hoist it; False keeps every
      node of it; None (the default) derives it from torch's schema, and an op torch does not know is kept;
    - ``commutative``: its first two operands may be swapped; ``canonical``: its canonicalization class.

    Give at least one of them. Registering a name twice is an error unless ``replace=True``.
    """
    if all(x is None for x in (kernel, shape_fn, cost, commutative, pure, canonical)):
        raise TorchIRError(
            f"register_op({name!r}): give a kernel=, a shape_fn=, or a trait (cost=, pure=, commutative=, canonical=)"
        )
    for what, fn in (("kernel", kernel), ("shape_fn", shape_fn), ("cost", cost)):
        if fn is not None and not callable(fn):
            raise TorchIRError(f"register_op({name!r}): {what} must be callable, got {type(fn).__name__}")
    for what, flag in (("commutative", commutative), ("pure", pure)):
        if flag is not None and not isinstance(flag, bool):
            raise TorchIRError(f"register_op({name!r}): {what} must be True, False or None, got {flag!r}")
    if canonical is not None and canonical not in CANONICAL_CLASSES:
        raise TorchIRError(f"register_op({name!r}): canonical={canonical!r}; expected one of {CANONICAL_CLASSES}")
    key = parse_op_name(name)
    model = cost if isinstance(cost, CostModel) or cost is None else custom_cost(cost)
    entry = OpEntry(display_name(key), kernel, shape_fn, model, commutative, pure, canonical)
    with _LOCK:
        if key in _ENTRIES and not replace:
            raise TorchIRError(f"op {entry.name} is registered already; pass replace=True to override it")
        _ENTRIES[key] = entry
        _changed()
    return entry


def unregister_op(name: str) -> None:
    """Remove a registration (no error when there is none)."""
    with _LOCK:
        _ENTRIES.pop(parse_op_name(name), None)
        _changed()


def _changed() -> None:
    _GENERATION[0] += 1
    op_info.cache_clear()


def generation() -> int:
    """A number that changes with every registration: caches of derived facts key on it."""
    return _GENERATION[0]


def get_entry(op_type: str) -> OpEntry | None:
    """The registration for ``op_type`` (exact overload first, then the overload-less registration)."""
    try:
        namespace, op, overload = parse_op_name(op_type)
    except TorchIRError:
        return None
    entry = _ENTRIES.get((namespace, op, overload))
    if entry is None and overload is not None:
        entry = _ENTRIES.get((namespace, op, None))
    if entry is None and overload is None:
        entry = _ENTRIES.get((namespace, op, "default"))
    return entry


@functools.cache
def op_info(op_type: str) -> OpInfo:
    """The ``OpInfo`` of ``op_type`` (``"aten.add.Tensor"``, ``"operator.mul"``, ``"mylib.op.default"``).

    Every op type has one: an op nothing describes gets conservative traits (side effects, no kernel,
    no cost model).
    """
    return describe_op(op_type, get_entry(op_type) if _ENTRIES else None)


def get_kernel(op_type: str) -> Callable[..., Any] | None:
    """The registered kernel for ``op_type`` (``"mylib.my_op.default"`` or ``"mylib::my_op"``), or None."""
    entry = get_entry(op_type)
    return None if entry is None else entry.kernel


def get_shape_fn(op_type: str) -> Callable[..., Any] | None:
    """The registered shape function for ``op_type``, or None."""
    entry = get_entry(op_type)
    return None if entry is None else entry.shape_fn


def registered_ops() -> list[OpEntry]:
    """Every registration, in registration order."""
    return list(_ENTRIES.values())


def restore_registrations(entries: dict[tuple[str, str, str | None], OpEntry]) -> None:
    """Put the registrations back to ``entries`` (a copy of ``snapshot_registrations()``)."""
    with _LOCK:
        _ENTRIES.clear()
        _ENTRIES.update(entries)
        _changed()


def snapshot_registrations() -> dict[tuple[str, str, str | None], OpEntry]:
    """A copy of the registrations, for ``restore_registrations`` (tests that register ops use the pair)."""
    return dict(_ENTRIES)


__all__ = [
    "OpEntry",
    "generation",
    "get_entry",
    "get_kernel",
    "get_shape_fn",
    "op_info",
    "register_op",
    "registered_ops",
    "restore_registrations",
    "snapshot_registrations",
    "unregister_op",
]
