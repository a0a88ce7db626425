"""Spelling checks against the registry: an op type or operand name it does not know, with the closest ones
it does (a did-you-mean).

``check_op_type("aten.rsqrt")`` raises ``TorchIRError`` suggesting ``aten.rsqrt.default``;
``check_operands("aten.mean.dim", 1, ["keep_dim"])`` raises suggesting ``keepdim``. An op type is known when
torch has its overload, ``register_op`` registered it, it is an allowed Python function, or it is one of the
IR's structural ops (``higher_order.*`` regions, ``func.call``). The candidates for a suggestion are every
schema torch has (``aten``, ``prims``, ``torch.library`` ops), every registration and the allowed Python
functions, read only when a name is wrong.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from torch_ir.errors import TorchIRError
from torch_ir.ops.info import OpInfo
from torch_ir.ops.names import op_namespace, parse_op_name
from torch_ir.ops.python_ops import PYTHON_OPS, TORCH_SYM_FUNCTIONS
from torch_ir.ops.registry import op_info, registered_ops

STRUCTURAL_NAMESPACES = ("higher_order", "func")
"""Namespaces of the ops the IR itself defines (region ops, calls): known without a schema."""


def is_known(op_type: str) -> bool:
    """Whether the registry knows ``op_type`` (see the module docstring)."""
    if op_namespace(op_type) in STRUCTURAL_NAMESPACES:
        return True
    info = op_info(op_type)
    return info.entry is not None or info.target is not None


def check_op_type(op_type: str, what: str) -> OpInfo:
    """The ``OpInfo`` of ``op_type``; ``TorchIRError`` naming ``what`` with the closest known op types when the
    registry does not know it."""
    if not isinstance(op_type, str) or not op_type:
        raise TorchIRError(f"{what}: an op type is a string such as 'aten.add.Tensor', got {op_type!r}")
    if is_known(op_type):
        return op_info(op_type)
    close = similar_op_types(op_type)
    hint = f"; did you mean {_alternatives(close)}?" if close else ""
    spelling = ""
    if "::" in op_type:
        spelling = " (the IR spells torch's 'ns::op' as 'ns.op.default', 'ns::op.overload' as 'ns.op.overload')"
    raise TorchIRError(f"{what}: unknown op type {op_type!r}{spelling}{hint}")


def similar_op_types(op_type: str, limit: int = 3) -> list[str]:
    """The known op types closest to ``op_type`` (its overloads first, when only the overload is missing)."""
    wanted = _ir_spelling(op_type)
    candidates = _candidates()
    overloads = sorted(c for c in candidates if c.startswith(wanted + "."))
    if overloads:
        default = [c for c in overloads if c.endswith(".default")]
        return (default + [c for c in overloads if c not in default])[:limit]
    if wanted != op_type and wanted in candidates:
        return [wanted]
    namespace = op_namespace(wanted)
    same = [c for c in candidates if op_namespace(c) == namespace] or list(candidates)
    return difflib.get_close_matches(wanted, same, n=limit, cutoff=0.6)


def check_operands(op_type: str, positional: int, named: Iterable[str], what: str) -> tuple[str, ...] | None:
    """The schema names of ``positional`` operands of ``op_type`` followed by ``named`` ones; ``TorchIRError``
    naming ``what`` for too many positional operands, an unknown name (with the closest names) or an operand
    given twice. None when the op has no schema (a registered op without a torch definition)."""
    arguments = op_info(op_type).arguments
    if arguments is None:
        return None
    names = [a.name for a in arguments]
    leading = [a.name for a in arguments if not a.kwarg_only]
    if positional > len(leading):
        raise TorchIRError(
            f"{what}: {positional} positional operands, but {op_type} takes {len(leading)} "
            f"({', '.join(leading) or 'none'}); give the others by name"
        )
    given = leading[:positional]
    for name in named:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            hint = f"; did you mean {_alternatives(close)}?" if close else ""
            raise TorchIRError(f"{what}: {op_type} has no operand {name!r} (its operands: {', '.join(names)}){hint}")
        if name in given:
            raise TorchIRError(f"{what}: operand {name!r} of {op_type} is given twice (by position and by name)")
        given.append(name)
    return tuple(given)


def required_operands(op_type: str) -> tuple[str, ...]:
    """The operands of ``op_type`` without a default (a call must give them); () without a schema."""
    arguments = op_info(op_type).arguments or ()
    return tuple(a.name for a in arguments if not a.has_default)


def _ir_spelling(op_type: str) -> str:
    """``aes::rms_norm`` -> ``aes.rms_norm``, ``aten::add.Tensor`` -> ``aten.add.Tensor``; others unchanged."""
    if "::" not in op_type:
        return op_type
    try:
        namespace, op, overload = parse_op_name(op_type)
    except TorchIRError:
        return op_type.replace("::", ".")
    return f"{namespace}.{op}" + (f".{overload}" if overload else "")


def _candidates() -> set[str]:
    import torch

    out = {
        f"{schema.name.replace('::', '.')}.{schema.overload_name or 'default'}"
        for schema in torch._C._jit_get_all_schemas()
    }
    for entry in registered_ops():
        namespace, op, overload = parse_op_name(entry.name)
        out.add(f"{namespace}.{op}.{overload or 'default'}")
    out.update(PYTHON_OPS)
    out.update(f"torch.{name}" for name in TORCH_SYM_FUNCTIONS)
    return out


def _alternatives(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


__all__ = [
    "STRUCTURAL_NAMESPACES",
    "check_op_type",
    "check_operands",
    "is_known",
    "required_operands",
    "similar_op_types",
]
