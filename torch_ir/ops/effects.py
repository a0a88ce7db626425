"""What an op does besides computing its results: effects outside its tensors, writes, randomness.

Three rules, each the source of an ``OpInfo`` trait:

- ``side_effect_reason``: whether running the op reaches outside its tensors (file I/O such as
  ``aten.from_file`` / ``aten.save``, printing, RNG state, profiling, communication). An IR names its ops by
  string, so the interpreter (``torch_ir.runtime.sandbox``) and ``annotate-shapes`` refuse such ops: a deny
  list of namespaces and op names, plus a rule on the schema (an argument that names a file or a path, or
  takes a ``Storage``).
- ``keeps_unused``: whether a node must stay when nothing reads its results (asserts, in-place and
  ``out=`` ops, mutable schemas, ops torch-ir cannot resolve: conservative).
- ``is_random_op`` / ``NONDETERMINISTIC_OPS``: whether two calls with equal operands may differ (random
  draws, uninitialized memory).
"""

from __future__ import annotations

from typing import Any

from torch_ir.ops.names import op_name, op_namespace
from torch_ir.ops.python_ops import PYTHON_NAMESPACES
from torch_ir.ops.schema import is_seeded_random, writes_outside_results

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

KEPT_PREFIXES = (
    "aten._assert",
    "aten.sym_constrain_range",
    "aten._print",
    "aten.print",
    "aten.copy_",
    "aten.resize_",
    "aten.set_",
    "aten.record_stream",
    "aten._foreach_",
)
"""Op types (prefixes) that are kept even when their results are unused."""

RANDOM_MARKERS = (
    "rand",
    "dropout",
    "bernoulli",
    "multinomial",
    "normal",
    "uniform",
    "poisson",
    "exponential",
    "geometric",
    "cauchy",
    "log_normal",
    "empty",
    "seed",
)
"""Substrings of op names whose results differ between calls (random, or uninitialized memory)."""

NONDETERMINISTIC_OPS = frozenset(
    {
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "rand",
        "rand_like",
        "randn",
        "randn_like",
        "randint",
        "randint_like",
        "randperm",
        "bernoulli",
        "native_dropout",
        "normal",
        "uniform",
        "multinomial",
        "exponential",
    }
)
"""Op names whose results are not reproducible (uninitialized memory, random numbers): verification
compares their shapes only."""

UNANNOTATED_ALIAS_OPS = frozenset(
    {
        "_unsafe_view",
        "lift",
        "lift_fresh",
        "type_as",
        "to_dense",
        "unsafe_split",
        "unsafe_split_with_sizes",
        "unsafe_chunk",
        "atleast_1d",
        "atleast_2d",
        "atleast_3d",
        "_reinterpret_tensor",
    }
)
"""Op names whose results may share their operand's storage although their schema does not say so
(``_unsafe_view`` is a view; ``type_as`` and ``lift`` may return their operand itself; inductor's
``_reinterpret_tensor`` is a view of its operand's storage with the sizes and strides it is given)."""

STRIDE_READING_OPS = frozenset(
    {
        "aten.view.default",
        "aten._unsafe_view.default",
        "aten.view.dtype",
        "aten.as_strided.default",
        "aten.view_as_complex.default",
        "aten.view_as_real.default",
        "aten._reshape_alias.default",
    }
)
"""Ops whose eager result depends on the strides of their first operand. IR values have none (they are
contiguous by definition), so the interpreter gives these ops a contiguous operand."""


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


def keeps_unused(op_type: str, target: Any) -> bool:
    """Whether a node of this type must stay even when nothing reads its results; ``target`` is what
    ``resolve_op`` found for it (None: unknown, so kept)."""
    if op_type.startswith(KEPT_PREFIXES):
        return True
    name = op_name(op_type)
    if op_namespace(op_type) in PYTHON_NAMESPACES:
        return target is None or name in ("print", "setitem", "delitem")
    if name.endswith("_") and not name.endswith("__"):
        return True
    schema = getattr(target, "_schema", None)
    if schema is None:
        return True
    return writes_outside_results(schema)


def is_random_op(op_type: str, target: Any) -> bool:
    """Whether two nodes of this type with equal operands may give different results."""
    name = op_name(op_type).lower()
    if any(marker in name for marker in RANDOM_MARKERS):
        return True
    return is_seeded_random(target)


def is_nondeterministic(op_type: str) -> bool:
    """Whether the op's results are not reproducible at all (``NONDETERMINISTIC_OPS``)."""
    parts = op_type.split(".")
    return len(parts) > 1 and parts[1] in NONDETERMINISTIC_OPS


__all__ = [
    "KEPT_PREFIXES",
    "NONDETERMINISTIC_OPS",
    "RANDOM_MARKERS",
    "SIDE_EFFECT_NAMESPACES",
    "SIDE_EFFECT_OPS",
    "STRIDE_READING_OPS",
    "UNANNOTATED_ALIAS_OPS",
    "is_nondeterministic",
    "is_random_op",
    "keeps_unused",
    "side_effect_reason",
]
