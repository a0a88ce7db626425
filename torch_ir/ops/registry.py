"""The op registry: kernels for the interpreter and shape functions for ``annotate-shapes``.

It serves ops torch cannot run or describe by itself: a fused op that a user pass creates, or a
``torch.library`` op with only a fake kernel. One ``register_op`` call gives both consumers what they need::

    register_op("mylib::fused_gelu", kernel=my_kernel, shape_fn=my_shape_fn)

Names are accepted as ``"mylib::my_op"``, ``"mylib::my_op.overload"``, ``"mylib.my_op"`` or
``"mylib.my_op.default"`` (the IR's ``op_type``); a registration without an overload applies to every
overload of the op. Kernels are called like the op: with the arguments its torch schema lists (positional
in schema order, keyword-only ones by name), or, for an op torch does not know, as
``kernel(*node_args, **node_attrs)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch_ir.errors import TorchIRError

OpKey = tuple[str, str, "str | None"]


@dataclass(frozen=True)
class OpEntry:
    """One registered op: its canonical name, and the kernel and shape function (either may be None)."""

    name: str
    kernel: Callable[..., Any] | None = None
    shape_fn: Callable[..., Any] | None = None


_ENTRIES: dict[tuple[str, str, str | None], OpEntry] = {}
_LOCK = threading.Lock()


def parse_op_name(name: str) -> tuple[str, str, str | None]:
    """Split an op name into ``(namespace, op, overload)``; the overload is None when not given."""
    if not isinstance(name, str) or not name.strip():
        raise TorchIRError(f"op name {name!r}: expected 'namespace::op' or 'namespace.op.overload'")
    text = name.strip()
    if "::" in text:
        namespace, _, rest = text.partition("::")
        op, _, overload = rest.partition(".")
    else:
        parts = text.split(".")
        if len(parts) not in (2, 3):
            raise TorchIRError(f"op name {name!r}: expected 'namespace::op' or 'namespace.op.overload'")
        namespace, op = parts[0], parts[1]
        overload = parts[2] if len(parts) == 3 else ""
    if not namespace or not op or not (namespace + op).replace("_", "").isalnum():
        raise TorchIRError(f"op name {name!r}: expected 'namespace::op' or 'namespace.op.overload'")
    return namespace, op, overload or None


def _display(key: tuple[str, str, str | None]) -> str:
    namespace, op, overload = key
    return f"{namespace}::{op}" + (f".{overload}" if overload else "")


def register_op(
    name: str,
    kernel: Callable[..., Any] | None = None,
    shape_fn: Callable[..., Any] | None = None,
    *,
    replace: bool = False,
) -> OpEntry:
    """Register a kernel and/or a shape function for ``name``; return the entry.

    Registering a name twice is an error unless ``replace=True``.
    """
    if kernel is None and shape_fn is None:
        raise TorchIRError(f"register_op({name!r}): give a kernel=, a shape_fn=, or both")
    for what, fn in (("kernel", kernel), ("shape_fn", shape_fn)):
        if fn is not None and not callable(fn):
            raise TorchIRError(f"register_op({name!r}): {what} must be callable, got {type(fn).__name__}")
    key = parse_op_name(name)
    entry = OpEntry(_display(key), kernel, shape_fn)
    with _LOCK:
        if key in _ENTRIES and not replace:
            raise TorchIRError(f"op {entry.name} is registered already; pass replace=True to override it")
        _ENTRIES[key] = entry
    return entry


def unregister_op(name: str) -> None:
    """Remove a registration (no error when there is none)."""
    with _LOCK:
        _ENTRIES.pop(parse_op_name(name), None)


def get_entry(op_type: str) -> OpEntry | None:
    """The entry for ``op_type`` (exact overload first, then the overload-less registration)."""
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


__all__ = [
    "OpEntry",
    "get_entry",
    "get_kernel",
    "get_shape_fn",
    "parse_op_name",
    "register_op",
    "registered_ops",
    "unregister_op",
]
