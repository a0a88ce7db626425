"""annotate-shapes: recompute every value's type with torch's meta / fake kernels.

Each node's call is rebuilt from the IR by walking the op's schema (an argument is in ``attrs`` by name,
else it is the next entry of ``args``) and run on meta tensors, or on fake tensors with a ``ShapeEnv``
when a shape is symbolic (the graph's symbols become symbolic sizes, so ``seq`` dims propagate). Results
are cached per (op, operand types, attributes), so 32 identical layers cost one. A shape function
registered with ``torch_ir.ops`` takes precedence, for ops torch cannot run. Regions are annotated first,
innermost first; a region op's result types then follow from its regions by its contract.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from torch_ir.analysis.op_effects import side_effect_reason
from torch_ir.analysis.op_info import PURE_NAMESPACES, resolve_op
from torch_ir.errors import PassError
from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ir.regions import nested_regions, region_result_types
from torch_ir.ir.types import DTYPES, ScalarType, TensorType, ValueType
from torch_ir.ops.python_ops import python_call_problem
from torch_ir.passes.base import Pass, PassContext, PassResult
from torch_ir.passes.registry import register_pass

_IDENT = re.compile(r"[A-Za-z_]\w*")
_MISSING = object()


@register_pass
@dataclass(frozen=True)
class AnnotateShapes(Pass):
    """Recompute every value's type with meta/fake kernels; fill missing types, fail on a mismatch."""

    name: ClassVar[str] = "annotate-shapes"
    aliases: ClassVar[tuple[str, ...]] = ("shape-inference",)
    regions: ClassVar[str] = (
        "recurses: annotates each region (innermost first), then types each region op from its regions"
    )

    strict: bool = True
    """Fail on a computed type that differs from the recorded one (else the computed type wins)."""
    fallback: bool = True
    """Keep recorded types of ops no kernel or shape function can run (else fail)."""

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        modified = False
        regions = [(region, f"region {path.rstrip('/')}") for path, region in nested_regions(graph)]
        for g, where in (*regions, (graph.init, "init graph"), (graph, "graph")):
            if g is not None:
                modified = _Inference(g, self, where, ctx).run() or modified
        return PassResult(graph, modified)


class _Inference:
    """Type inference over one graph: symbols, scalar expressions and the signature cache."""

    def __init__(self, graph: Graph, options: AnnotateShapes, where: str, ctx: PassContext):
        self.graph = graph
        self.options = options
        self.where = where
        self.ctx = ctx
        self.cache: dict[Any, Any] = {}
        self.scalars: dict[Value, Any] = {}
        self._shape_env: Any = None
        self._mode: Any = None
        self.symbols: dict[str, Any] = {}
        self.hints: dict[Any, int] = {}
        self.rename: dict[Any, Any] = {}
        self._symints: dict[str, Any] = {}
        self.reasons: dict[Any, str] = {}
        self.last_reason = ""
        self.specializing: list[str] = []
        self.specialized: dict[Any, list[str]] = {}

    # -- driver
    def run(self) -> bool:
        import torch  # noqa: F401  (kernels live there)

        for value in [*self.graph.inputs, *self.graph.weights.values()]:
            if value.type is None:
                raise PassError(f"{self.where}: {value.ref} has no type; annotate-shapes needs input and weight types")
            if isinstance(value.type, ScalarType) and value.type.kind == "int" and _IDENT.fullmatch(value.name):
                self.scalars[value] = value.name
        modified = False
        loggers = [
            logging.getLogger(n) for n in ("torch._subclasses.fake_tensor", "torch.fx.experimental.symbolic_shapes")
        ]
        levels = [logger.level for logger in loggers]
        for logger in loggers:  # a kernel failing on symbolic sizes is expected here, not news
            logger.setLevel(logging.CRITICAL)
        try:
            for node in self.graph.nodes:
                if node.outputs:
                    modified = self.annotate(node) or modified
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
        return modified

    def annotate(self, node: Node) -> bool:
        try:
            key = (
                node.op_type,
                tuple(self.arg_key(a) for a in node.args),
                repr(node.attrs),
                id(node) if node.regions else 0,
            )
        except KeyError as exc:
            raise PassError(
                f"{self.where}: node {node.name} ({node.op_type}) reads {exc.args[0]}, whose type is unknown"
            ) from None
        computed = self.cache.get(key, _MISSING)
        if computed is _MISSING:
            self.specializing = []
            computed = self.compute(node)
            self.cache[key] = computed
            if computed is None:
                self.reasons[key] = self.last_reason
            if self.specializing and computed is not None:
                self.specialized[key] = self.specializing
        if key in self.specialized and computed is not None:
            return self.check_specialized(node, computed, self.specialized[key])
        if computed is None:
            if any(v.type is None for v in node.outputs):
                raise PassError(
                    f"{self.where}: node {node.name}: cannot compute the result types of {node.op_type} "
                    f"({self.reasons.get(key, 'no kernel')}), and they are not recorded; import the library that "
                    "defines the op or register a shape function with torch_ir.ops.register_op"
                )
            return False
        if len(computed) != len(node.outputs):
            raise PassError(
                f"{self.where}: node {node.name} ({node.op_type}) has {len(node.outputs)} results but its kernel "
                f"returns {len(computed)}"
            )
        modified = False
        for value, (new, expr) in zip(node.outputs, computed):
            if expr is not None:
                self.scalars[value] = expr
            old = value.type
            if new is None or old == new:
                continue
            if old is None:
                value.type = new
                modified = True
            elif not _same_type(old, new, self.graph.symbols):
                if self.agrees_on_trace_device(node, value.index, old):
                    continue  # the meta kernel differs from the device the model was traced as, which stands
                if self.options.strict:
                    raise PassError(
                        f"{self.where}: node {node.name} ({node.op_type}): result {value.ref} is recorded as "
                        f"{old} but the kernel computes {new}"
                    )
                value.type = new
                modified = True
        return modified

    def check_specialized(self, node: Node, computed: list[Any], symbols: list[str]) -> bool:
        """A kernel that guarded a symbol to its example size computed static sizes where the recorded type
        has symbols: the recorded type stands where it is symbolic; dtype, rank and static sizes must agree."""
        names = ", ".join(symbols)
        if len(computed) != len(node.outputs):
            raise PassError(
                f"{self.where}: node {node.name} ({node.op_type}) has {len(node.outputs)} results but its kernel "
                f"returns {len(computed)}"
            )
        for value, (new, _) in zip(node.outputs, computed):
            old = value.type
            if old is None and new is not None:
                raise PassError(
                    f"{self.where}: node {node.name}: cannot compute the type of {value.ref} ({node.op_type}): its "
                    f"kernel specializes {names} to the example size, and no type is recorded"
                )
            if old is not None and new is not None and not _fits(old, new) and self.options.strict:
                raise PassError(
                    f"{self.where}: node {node.name} ({node.op_type}): result {value.ref} is recorded as {old} but "
                    f"the kernel computes {new} (with {names} specialized to the example size)"
                )
        self.ctx.log(f"annotate-shapes: kept the recorded types of {node.name}: its kernel specializes {names}", 2)
        return False

    def arg_key(self, arg: Any) -> Any:
        if isinstance(arg, Value):
            t = arg.type
            if t is None:
                raise KeyError(arg.ref)
            if isinstance(t, TensorType):
                return t
            return (t.kind, self.scalars.get(arg))
        if isinstance(arg, list):
            return tuple(self.arg_key(a) if isinstance(a, Value) else ("=", repr(a)) for a in arg)
        return ("=", repr(arg))

    def agrees_on_trace_device(self, node: Node, index: int, recorded: ValueType) -> bool:
        """Whether the op on fake tensors of the trace device (the graph's ``device``) gives the recorded type:
        some kernels differ by device (CPU batch norm in eval mode returns empty saved statistics)."""
        device = str(self.graph.meta.get("device", "meta"))
        target = resolve_op(node.op_type)
        if device == "meta" or target is None or not hasattr(target, "_schema"):
            return False
        try:
            with self.mode():
                computed = self.outputs(self.call(node, target, fake=True, device=device), node)
        except Exception:  # no fake kernel on that device either: the mismatch stands
            return False
        new = computed[index][0] if index < len(computed) else None
        if self.specialized_symbols():
            self.forget_symbols()
            return new is not None and _fits(recorded, new)
        return new is not None and _same_type(recorded, new)

    # -- computing one signature
    def compute(self, node: Node) -> list[tuple[ValueType | None, Any]] | None:
        if node.regions:  # region ops: result types follow from their regions (annotated before)
            types = region_result_types(node)
            if types is not None:
                return [(t, None) for t in types]
        shape_fn = _registered_shape_fn(node.op_type)
        if shape_fn is not None:
            return self.from_shape_fn(node, shape_fn)
        target = resolve_op(node.op_type)
        if target is None:
            return self.give_up(node, "the op is not known to torch (is its library imported?)")
        effect = side_effect_reason(node.op_type, getattr(target, "_schema", None))
        if effect:  # never run an op that acts outside its tensors to learn its type
            return self.give_up(node, f"not run: {effect}")
        symbolic = self.is_symbolic(node)
        if node.op_type.split(".", 1)[0] in PURE_NAMESPACES:
            return self.call_python(node, target)
        if not symbolic:
            try:
                return self.outputs(self.call(node, target, fake=False), node)
            except Exception:  # no meta kernel: try again under FakeTensorMode (decompositions)
                pass
        try:
            with self.mode():
                computed = self.outputs(self.call(node, target, fake=True), node)
        except PassError:
            raise
        except Exception as exc:
            computed = None
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        specialized = self.specialized_symbols()
        if specialized:  # the kernel fixed a symbol to its example size: its sizes say nothing of the symbol
            self.forget_symbols()
            self.specializing = specialized
        return computed if computed is not None else self.give_up(node, reason)

    def give_up(self, node: Node, reason: str) -> list[tuple[ValueType | None, Any]] | None:
        """Keep the node's recorded types (None: nothing computed), or fail when fallback is off."""
        if not self.options.fallback:
            raise PassError(f"{self.where}: node {node.name} ({node.op_type}): cannot compute its type: {reason}")
        self.last_reason = reason
        self.ctx.log(f"annotate-shapes: keeping recorded types of {node.name} ({node.op_type}): {reason}", 2)
        return None

    def is_symbolic(self, node: Node) -> bool:
        for value in node.inputs:
            if isinstance(value.type, TensorType):
                if not value.type.is_static:
                    return True
            elif not isinstance(self.scalars.get(value), (int, float, bool)):
                return True
        return False

    def from_shape_fn(self, node: Node, fn: Any) -> list[tuple[ValueType | None, Any]]:
        try:
            result = fn([v.type for v in node.inputs], dict(node.attrs))
        except Exception as exc:
            raise PassError(f"{self.where}: node {node.name}: shape function of {node.op_type} failed: {exc}") from exc
        types = list(result) if isinstance(result, (list, tuple)) else [result]
        return [(t, None) for t in types]

    def call_python(self, node: Node, fn: Any) -> list[tuple[ValueType | None, Any]] | None:
        args = [self.py_value(a, fake=True) for a in node.args]
        if any(a is _MISSING for a in args):
            return self.give_up(node, "an operand's value is unknown")
        problem = python_call_problem(node.op_type, args)
        if problem:
            return self.give_up(node, f"not run: {problem}")
        try:
            return self.outputs(fn(*args), node)
        except Exception as exc:
            return self.give_up(node, f"{type(exc).__name__}: {exc}")

    def call(self, node: Node, op: Any, fake: bool, device: str = "meta") -> Any:
        args_iter = iter(node.args)
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        skipped = False
        for argument in op._schema.arguments:
            if argument.name in node.attrs:
                value = _convert_attr(node.attrs[argument.name], argument)
            else:
                raw = next(args_iter, _MISSING)
                if raw is _MISSING:
                    skipped = True
                    continue
                value = self.py_value(raw, fake, device)
                if value is _MISSING:  # a data-dependent scalar: the recorded types stand
                    raise ValueError(f"operand {argument.name} is a scalar known only at run time")
            if argument.kwarg_only or skipped:
                keywords[argument.name] = value
            else:
                positional.append(value)
        return op(*positional, **keywords)

    def py_value(self, arg: Any, fake: bool, device: str = "meta") -> Any:
        import torch

        if isinstance(arg, list):
            return [self.py_value(a, fake, device) for a in arg]
        if not isinstance(arg, Value):
            return arg
        t = arg.type
        if isinstance(t, TensorType):
            shape = [d if isinstance(d, int) else self.symint(d) for d in t.shape]
            return torch.empty(shape, dtype=getattr(torch, t.dtype), device=device)
        expr = self.scalars.get(arg, _MISSING)
        if isinstance(expr, str):
            return self.symint(expr)
        return expr

    def outputs(self, result: Any, node: Node) -> list[tuple[ValueType | None, Any]]:
        items = list(result) if isinstance(result, (list, tuple)) else [result]
        if len(node.outputs) == 1 and len(items) != 1:
            items = [result]
        return [self.describe(item) for item in items]

    def describe(self, obj: Any) -> tuple[ValueType | None, Any]:
        import torch

        if isinstance(obj, torch.Tensor):
            dtype = str(obj.dtype).removeprefix("torch.")
            if dtype not in DTYPES:
                return None, None
            return TensorType(tuple(self.dim(d) for d in obj.shape), dtype), None
        if isinstance(obj, bool) or isinstance(obj, torch.SymBool):
            return ScalarType("bool"), obj if isinstance(obj, bool) else None
        if isinstance(obj, (int, torch.SymInt)):
            return ScalarType("int"), self.dim(obj)
        if isinstance(obj, (float, torch.SymFloat)):
            return ScalarType("float"), obj if isinstance(obj, float) else None
        return None, None

    # -- symbols
    def mode(self) -> Any:
        if self._mode is None:
            from torch._subclasses.fake_tensor import FakeTensorMode

            self._mode = FakeTensorMode(shape_env=self.shape_env(), allow_non_fake_inputs=True)
            self._mode.cache_enabled = False  # its symbolic cache entries cost more than they save here
        return self._mode

    def shape_env(self) -> Any:
        if self._shape_env is None:
            from torch.fx.experimental.symbolic_shapes import ShapeEnv

            self._shape_env = ShapeEnv()
            for name in self.graph.symbols:
                self.symbol(name)
        return self._shape_env

    def symbol(self, name: str) -> Any:
        if name in self.symbols:
            return self.symbols[name]
        import sympy
        from torch._dynamo.source import ConstantSource
        from torch.fx.experimental.symbolic_shapes import DimDynamic

        rng = self.graph.symbols.get(name)
        hint = 17 + 4 * len(self.symbols)
        if rng is not None:
            hint = max(hint, rng.min, 2)
            if rng.max is not None and hint > rng.max:
                hint = max(rng.max, rng.min)
        sym = self.shape_env().create_symbol(
            hint, source=ConstantSource(f"torch_ir_{name}"), dynamic_dim=DimDynamic.DYNAMIC
        )
        self.symbols[name] = sym
        self.hints[sym] = hint
        self.rename[sym] = sympy.Symbol(name, integer=True, positive=True)
        return sym

    def symint(self, text: str) -> Any:
        cached = self._symints.get(text)
        if cached is not None:
            return cached
        import sympy

        functions = _sympy_functions()
        local = {n: self.symbol(n) for n in set(_IDENT.findall(text)) if n not in functions}
        expr = sympy.sympify(text, locals={**functions, **local})
        hint = int(expr.xreplace({s: sympy.Integer(h) for s, h in self.hints.items()}))
        value = self.shape_env().create_symintnode(expr, hint=hint)
        self._symints[text] = value
        return value

    def specialized_symbols(self) -> list[str]:
        """The graph's symbols that a kernel has guarded to one value (``b == 17``) since they were made."""
        if self._shape_env is None:
            return []
        replacements = self._shape_env.replacements
        return [
            name
            for name, sym in self.symbols.items()
            if getattr(replacements.get(sym), "is_number", False) or _pinned(self._shape_env.var_to_range.get(sym))
        ]

    def forget_symbols(self) -> None:
        """Start the next symbolic call from a fresh ``ShapeEnv``: guards one kernel added bind no other."""
        self._shape_env = self._mode = None
        self.symbols, self.hints, self.rename, self._symints = {}, {}, {}, {}

    def dim(self, d: Any) -> int | str:
        if isinstance(d, int):
            return d
        expr = d.node.expr
        if getattr(expr, "is_number", False):
            return int(expr)
        return str(expr.xreplace(self.rename)).replace(" ", "")


def _pinned(bounds: Any) -> bool:
    """Whether a symbol's value range holds one value only."""
    return bounds is not None and bounds.lower == bounds.upper


def _fits(recorded: ValueType, computed: ValueType) -> bool:
    """Whether a type computed with some symbols fixed to example sizes can be ``recorded``: same kind,
    dtype and rank, and the same size wherever the recorded one is static."""
    if type(recorded) is not type(computed) or recorded.dtype != computed.dtype:
        return False
    if not isinstance(recorded, TensorType) or not isinstance(computed, TensorType):
        return True
    if len(recorded.shape) != len(computed.shape):
        return False
    return all(not isinstance(a, int) or a == b for a, b in zip(recorded.shape, computed.shape))


def _same_type(old: ValueType, new: ValueType, symbols: Any = ()) -> bool:
    """Whether a recorded type and a computed one agree. A recorded static size where the kernel computes
    one from a number read from data (a symbol the graph does not declare, ``u0+5``) agrees: the trace knew
    that number (it pinned it), the kernel does not."""
    if type(old) is not type(new) or old.dtype != new.dtype or len(old.shape) != len(new.shape):
        return False
    for a, b in zip(old.shape, new.shape):
        if a == b:
            continue
        if isinstance(a, int) and isinstance(b, int):
            return False
        try:
            import sympy

            functions = _sympy_functions()
            computed = sympy.sympify(str(b), locals=functions)
            if isinstance(a, int) and {str(s) for s in computed.free_symbols} - set(symbols):
                continue
            if sympy.simplify(sympy.sympify(str(a), locals=functions) - computed) != 0:
                return False
        except (sympy.SympifyError, TypeError, ValueError):
            return False
    return True


_FUNCTIONS: dict[str, Any] = {}


def _sympy_functions() -> dict[str, Any]:
    if not _FUNCTIONS:
        import torch.utils._sympy.functions as functions

        for name in (
            "FloorDiv",
            "CeilDiv",
            "CleanDiv",
            "Mod",
            "PythonMod",
            "ModularIndexing",
            "Max",
            "Min",
            "CeilToInt",
            "FloorToInt",
            "TruncToInt",
            "IntTrueDiv",
            "FloatTrueDiv",
            "PowByNatural",
        ):
            if hasattr(functions, name):
                _FUNCTIONS[name] = getattr(functions, name)
        import sympy

        _FUNCTIONS.update(floor=sympy.floor, ceiling=sympy.ceiling)  # how sympy prints some divisions
    return _FUNCTIONS


def _convert_attr(value: Any, argument: Any) -> Any:
    """A JSON-typed attribute as the Python value the op's schema expects."""
    import torch

    if value is None:
        return None
    kind = str(getattr(argument, "real_type", argument.type))
    if "ScalarType" in kind and isinstance(value, str):
        return getattr(torch, value)
    if "Device" in kind:
        return torch.device("meta")
    if ("Layout" in kind or "MemoryFormat" in kind) and isinstance(value, str):
        return getattr(torch, value)
    if (
        isinstance(value, str)
        and ("float" in kind or "Scalar" in kind)
        and value.lower() in ("inf", "-inf", "nan", "infinity", "-infinity")
    ):
        return float(value)
    if isinstance(value, dict) and set(value) == {"real", "imag"}:
        return complex(value["real"], value["imag"])
    if isinstance(value, dict) and "float" in value:
        return float(value["float"])
    if isinstance(value, float) and math.isnan(value):
        return value
    return value


@functools.cache
def _shape_fn_lookup() -> Any:
    try:
        from torch_ir.ops.registry import get_shape_fn
    except ImportError:
        return None
    return get_shape_fn


def _registered_shape_fn(op_type: str) -> Any:
    get_shape_fn = _shape_fn_lookup()
    if get_shape_fn is None:
        return None
    try:
        return get_shape_fn(op_type)
    except Exception:  # an unknown op in a registry that raises instead of returning None
        return None


_INFERRED: dict[Any, list[ValueType | None]] = {}


def infer_result_types(graph: Graph, op_type: str, args: list[Any], attrs: dict[str, Any]) -> list[ValueType | None]:
    """The result types of a node ``op_type(args, attrs)`` that is about to be built in ``graph``.

    Runs the op's shape function (``torch_ir.ops.register_op``) or its meta/fake kernel on the operand
    types, as annotate-shapes does; results of static signatures are cached. ``IRError`` when it cannot.
    """
    from torch_ir.errors import IRError

    fast = _static_key(op_type, args, attrs)
    if fast is not None and fast in _INFERRED:
        return list(_INFERRED[fast])
    probe = Node("create_op", op_type, args, attrs)
    inference = _Inference(graph, AnnotateShapes(fallback=True), "graph", PassContext())
    for value in probe.inputs:
        if value.type is None:
            raise IRError(f"create_op({op_type}): operand {value.ref} has no type; pass output_types=")
    try:
        computed = inference.compute(probe)
    except PassError as exc:
        raise IRError(f"create_op({op_type}): {exc}") from None
    if inference.specializing:
        raise IRError(
            f"create_op({op_type}): cannot infer the result types: the kernel specializes "
            f"{', '.join(inference.specializing)} to an example size; pass output_types="
        )
    if computed is None:
        raise IRError(
            f"create_op({op_type}): cannot infer the result types ({inference.last_reason}); import the library "
            "that defines the op, register a shape function with torch_ir.ops.register_op, or pass output_types="
        )
    types = [t for t, _ in computed]
    if fast is not None and len(_INFERRED) < 65536:
        _INFERRED[fast] = types
    return list(types)


def _static_key(op_type: str, args: list[Any], attrs: dict[str, Any]) -> Any:
    """A cache key for a call whose operands are all tensors of static shape (None otherwise)."""
    parts: list[Any] = []
    for arg in args:
        if isinstance(arg, Value):
            t = arg.type
            if not isinstance(t, TensorType) or not t.is_static:
                return None
            parts.append(t)
        elif isinstance(arg, list):
            inner: list[Any] = []
            for item in arg:
                if isinstance(item, Value):
                    t = item.type
                    if not isinstance(t, TensorType) or not t.is_static:
                        return None
                    inner.append(t)
                else:
                    inner.append(("=", repr(item)))
            parts.append(tuple(inner))
        else:
            parts.append(("=", repr(arg)))
    return (op_type, tuple(parts), repr(attrs))
