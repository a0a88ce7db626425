"""Which ops act outside their tensors: file I/O, printing, RNG state, profiling, communication.

An IR names its ops by string, so a file can name ``aten.from_file`` (maps a file, ``shared=True`` writes
it back) or ``aten.save``. ``side_effect_reason`` is the rule the interpreter (``torch_ir.runtime.sandbox``)
and ``annotate-shapes`` apply before running an op: a deny list of namespaces and op names, plus a rule on
the schema (an argument that names a file or a path, or takes a ``Storage``).
"""

from __future__ import annotations

from typing import Any

SIDE_EFFECT_NAMESPACES = frozenset(
    {
        "profiler",
        "c10d",
        "c10d_functional",
        "_c10d_functional",
        "_c10d_functional_autograd",
        "symm_mem",
        "_dtensor",
        "debugprims",
        "debug_mode_ops",
        "prim",
        "rngprims",
        "inductor_prims",
        "_test",
    }
)
"""Op namespaces whose ops reach outside their tensors (profiling, communication, RNG state, debugging)."""

SIDE_EFFECT_OPS = frozenset(
    {
        "from_file",
        "save",
        "load",
        "_print",
        "print",
        "warn",
        "_test_warn_in_autograd",
        "record_stream",
        "wait",
        "seed",
        "manual_seed",
        "initial_seed",
        "set_rng_state",
        "get_rng_state",
        "_record_function_enter",
        "_record_function_enter_new",
        "_record_function_exit",
    }
)
"""Op names (in any namespace) with effects outside their tensors: I/O, printing, RNG state, streams."""

_PATH_WORDS = ("file", "path", "dir")

_PATH_WORDS = ("file", "path", "dir")


def side_effect_reason(op_type: str, schema: Any = None) -> str:
    """Why running ``op_type`` would reach outside its tensors, or '' when it would not.

    ``schema`` is the op's ``torch.FunctionSchema`` when torch knows it.
    """
    parts = op_type.split(".")
    namespace = parts[0]
    name = parts[1] if len(parts) > 1 else ""
    if namespace in SIDE_EFFECT_NAMESPACES:
        return f"ops of namespace {namespace!r} act outside their tensors (profiling, communication, RNG, debug)"
    if name in SIDE_EFFECT_OPS or name.removesuffix("_") in SIDE_EFFECT_OPS:
        return f"{name} acts outside its tensors (file I/O, printing, RNG state or streams)"
    if schema is not None:
        for argument in schema.arguments:
            type_text = str(argument.type)
            if "Storage" in type_text:
                return f"argument {argument.name!r} is a Storage, which may map a file"
            if "str" in type_text and any(word in argument.name.lower() for word in _PATH_WORDS):
                return f"argument {argument.name!r} names a file or path"
    return ""


__all__ = ["SIDE_EFFECT_NAMESPACES", "SIDE_EFFECT_OPS", "side_effect_reason"]
