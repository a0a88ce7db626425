"""Op names: the IR's spelling ``aten.add.Tensor`` and torch's ``aten::add.Tensor``, split into their parts.

An op type has a namespace, an op name and, for ops torch defines, an overload: ``aten.add.Tensor``,
``mylib.fused.default``. Python-level ops have two parts (``operator.mul``, ``torch.sym_max``) and region
ops too (``higher_order.cond``).
"""

from __future__ import annotations

from torch_ir.errors import TorchIRError

OpKey = tuple[str, str, "str | None"]
"""``(namespace, op, overload)``; the overload is None when a name does not give one."""


def parse_op_name(name: str) -> tuple[str, str, str | None]:
    """Split an op name into ``(namespace, op, overload)``; the overload is None when not given.

    Accepts ``"mylib::my_op"``, ``"mylib::my_op.overload"``, ``"mylib.my_op"`` and ``"mylib.my_op.default"``.
    """
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


def display_name(key: tuple[str, str, str | None]) -> str:
    """``mylib::my_op`` or ``mylib::my_op.overload``: torch's spelling of a parsed name."""
    namespace, op, overload = key
    return f"{namespace}::{op}" + (f".{overload}" if overload else "")


def op_name(op_type: str) -> str:
    """The op's name without namespace and overload: ``add_`` for ``aten.add_.Tensor``, ``mul`` for
    ``operator.mul``."""
    parts = op_type.split(".")
    return parts[1] if len(parts) >= 3 else parts[-1]


def op_namespace(op_type: str) -> str:
    """``aten`` for ``aten.add.Tensor``, ``operator`` for ``operator.mul``."""
    return op_type.split(".", 1)[0]


__all__ = ["OpKey", "display_name", "op_name", "op_namespace", "parse_op_name"]
