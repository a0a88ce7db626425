"""Type inference: the result types of one op call from its operand types and attributes.

In order: the op's registered shape function (``register_op(..., shape_fn=)``); for an allowed Python
function (``operator.mul`` on sizes), the function itself on the operands' known values; else torch's
kernel on meta tensors, or on fake tensors with a ``ShapeEnv`` when a shape is symbolic (a graph symbol
such as ``seq`` becomes a symbolic size, so ``2*seq`` propagates). The call is rebuilt by walking the op's
schema: an argument is in ``attrs`` by name, else it is the next operand. Ops that act outside their
tensors are never run.

The IR's types are not imported here: the caller passes its tensor and scalar type classes, and
operands that hold a value as ``Operand(type, value)``; a type is read through ``shape`` and ``dtype``.
Symbolic dims are the IR's parsed expressions (``torch_ir.ir.symbolic``): they become sympy expressions by
folding their trees (``fold``), never by evaluating text; a text dim is parsed by ``tensor_type.dim``.
``annotate-shapes`` (a pass) and ``Graph.create_op`` (through ``torch_ir.ir.operands``) are the callers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from torch_ir.errors import TorchIRError
from torch_ir.ops.python_ops import python_call_problem
from torch_ir.ops.registry import generation as _GENERATION
from torch_ir.ops.registry import op_info

MISSING: Any = object()
"""What a scalar operand's value is when it is known only at run time."""

Inferred = list[tuple[Any, Any]]
"""One ``(type, value)`` per result: the type (None when it cannot be described), and for a scalar result
what is known of its value (a number, a symbolic expression such as ``"2*seq"``, or None)."""


class Operand:
    """An operand that holds a value: its type, and for a scalar what is known of its value (a number, a
    symbolic expression such as ``"seq"``, or None when it is known only at run time)."""

    __slots__ = ("type", "value")

    def __init__(self, type: Any, value: Any = None):
        self.type = type
        self.value = value

    def __repr__(self) -> str:
        return f"Operand({self.type!r}, {self.value!r})"


class ShapeFunctionError(TorchIRError):
    """A registered shape function raised; the message names the op."""


class TypeInference:
    """Computes result types of op calls over one graph: its symbols (``name -> range`` with ``min`` and
    ``max``) become symbolic sizes of one ``ShapeEnv``, shared by every call. For a graph read from a file
    (``untrusted``) only allow-listed ops run.

    ``tensor_type`` and ``scalar_type`` are the caller's type classes, built as ``tensor_type(shape, dtype)``
    (an unknown dtype raises a ``TorchIRError``) and ``scalar_type(kind)``.
    """

    def __init__(
        self,
        tensor_type: type,
        scalar_type: type,
        symbols: Mapping[str, Any] | None = None,
        untrusted: bool = False,
    ):
        self.tensor_type = tensor_type
        self.scalar_type = scalar_type
        self.graph_symbols = dict(symbols or {})
        self.untrusted = untrusted
        """The graph was read from a file: only ops of the allow-list (``OpInfo.untrusted_ok``) run, even on
        meta tensors (TorchScript's string ops, for one, compute for real: ``aten.zfill`` of a 4 GB width)."""
        self.reason = ""
        """Why the last ``infer`` returned None."""
        self.specialized: list[str] = []
        """The graph's symbols the last ``infer``'s kernel guarded to their example size (``b == 17``, as
        ``F.pad`` does on a dynamic batch): its sizes then say nothing of those symbols."""
        self.unbacked: set[str] = set()
        """The symbols the last ``infer``'s kernel made for sizes that depend on data (``u0``, printed as the
        kernel's shape environment names them): they say nothing of the graph's own symbols."""
        self._env: Any = None
        self._fake_mode: Any = None
        self._symbols: dict[str, Any] = {}
        self._hints: dict[Any, int] = {}
        self._rename: dict[Any, Any] = {}
        self._symints: dict[str, Any] = {}

    # -- one call
    def infer(
        self, op_type: str, operands: Sequence[Any], attrs: Mapping[str, Any], num_results: int | None = None
    ) -> Inferred | None:
        """The result types of ``op_type(operands, attrs)``, or None (``reason`` says why) when no shape
        function, kernel or Python function can compute them; ``num_results`` is how many results the node
        has, when known (a node with one result whose kernel returns a list: the list is its one result).
        ``ShapeFunctionError`` when a registered shape function fails. ``specialized`` names the symbols the
        kernel fixed to their example sizes, if any; ``unbacked`` the sizes it made from data."""
        self.specialized = []
        self.unbacked = set()
        info = op_info(op_type)
        if info.shape_fn is not None:
            return self._from_shape_fn(op_type, info.shape_fn, operands, attrs)
        target = info.target
        if target is None:
            return self._unknown("the op is not known to torch (is its library imported?)")
        if info.side_effect_reason:  # never run an op that acts outside its tensors to learn its type
            return self._unknown(f"not run: {info.side_effect_reason}")
        if self.untrusted and not info.untrusted_ok:
            return self._unknown(
                "not run: an IR read from a file runs only ops of the allow-list (torch_ir.ops.runnable)"
            )
        if info.python_level:
            return self._call_python(op_type, target, operands, num_results)
        if not self._is_symbolic(operands):
            try:
                return self._outputs(self._call(target, operands, attrs, fake=False), num_results)
            except Exception:  # no meta kernel: try again under FakeTensorMode (decompositions)
                pass
        computed: Inferred | None = None
        try:
            with self._mode():
                computed = self._outputs(self._call(target, operands, attrs, fake=True), num_results)
        except Exception as exc:
            text = str(exc).strip().splitlines()[0] if str(exc) else ""
            self.reason = f"{type(exc).__name__}: {text}"
        self.specialized = self._specialized_symbols()
        if self.specialized:  # guards one kernel added bind no other call: start the next from a fresh ShapeEnv
            self._forget_symbols()
        return computed

    def infer_on_device(
        self, op_type: str, operands: Sequence[Any], attrs: Mapping[str, Any], device: str, num_results: int, index: int
    ) -> Any:
        """The type of result ``index`` on fake tensors of ``device`` (some kernels differ by device: CPU batch
        norm in eval mode returns empty saved statistics); None when the op cannot run there. ``specialized``
        says whether the kernel fixed symbols to their example sizes."""
        self.specialized = []
        target = op_info(op_type).target
        if target is None or not hasattr(target, "_schema"):
            return None
        try:
            with self._mode():
                computed = self._outputs(self._call(target, operands, attrs, fake=True, device=device), num_results)
        except Exception:  # no fake kernel on that device either
            computed = []
        self.specialized = self._specialized_symbols()
        if self.specialized:
            self._forget_symbols()
        return computed[index][0] if index < len(computed) else None

    def _unknown(self, reason: str) -> None:
        self.reason = reason
        return None

    def _from_shape_fn(
        self, op_type: str, fn: Callable[..., Any], operands: Sequence[Any], attrs: Mapping[str, Any]
    ) -> Inferred:
        try:
            result = fn([o.type for o in iter_operands(operands)], dict(attrs))
        except Exception as exc:
            raise ShapeFunctionError(f"shape function of {op_type} failed: {exc}") from exc
        types = list(result) if isinstance(result, (list, tuple)) else [result]
        return [(t, None) for t in types]

    def _call_python(
        self, op_type: str, fn: Callable[..., Any], operands: Sequence[Any], num_results: int | None
    ) -> Inferred | None:
        args = [self._py_value(a, fake=True) for a in operands]
        if any(a is MISSING for a in args):
            return self._unknown("an operand's value is unknown")
        problem = python_call_problem(op_type, args)
        if problem:
            return self._unknown(f"not run: {problem}")
        try:
            return self._outputs(fn(*args), num_results)
        except Exception as exc:
            return self._unknown(f"{type(exc).__name__}: {exc}")

    def _is_symbolic(self, operands: Sequence[Any]) -> bool:
        for operand in iter_operands(operands):
            if self._is_tensor(operand.type):
                if not all(isinstance(d, int) for d in operand.type.shape):
                    return True
            elif not isinstance(operand.value, (int, float, bool)):
                return True
        return False

    def _is_tensor(self, type_: Any) -> bool:
        return isinstance(type_, self.tensor_type)

    def _call(
        self, op: Any, operands: Sequence[Any], attrs: Mapping[str, Any], fake: bool, device: str = "meta"
    ) -> Any:
        args_iter = iter(operands)
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        skipped = False
        for argument in op._schema.arguments:
            if argument.name in attrs:
                value = convert_attr(attrs[argument.name], argument)
            else:
                raw = next(args_iter, MISSING)
                if raw is MISSING:
                    skipped = True
                    continue
                value = self._py_value(raw, fake, device)
                if value is MISSING:  # a data-dependent scalar: the recorded types stand
                    raise ValueError(f"operand {argument.name} is a scalar known only at run time")
            if argument.kwarg_only or skipped:
                keywords[argument.name] = value
            else:
                positional.append(value)
        return op(*positional, **keywords)

    def _py_value(self, arg: Any, fake: bool, device: str = "meta") -> Any:
        import torch

        if isinstance(arg, list):
            return [self._py_value(a, fake, device) for a in arg]
        if not isinstance(arg, Operand):
            return arg
        t = arg.type
        if self._is_tensor(t):
            shape = [d if isinstance(d, int) else self._symint(d) for d in t.shape]
            return torch.empty(shape, dtype=getattr(torch, t.dtype), device=device)
        if isinstance(arg.value, str):
            return self._symint(arg.value)
        return MISSING if arg.value is None else arg.value

    def _outputs(self, result: Any, num_results: int | None) -> Inferred:
        items = list(result) if isinstance(result, (list, tuple)) else [result]
        if num_results == 1 and len(items) != 1:
            items = [result]
        return [self._describe(item) for item in items]

    def _describe(self, obj: Any) -> tuple[Any, Any]:
        import torch

        if isinstance(obj, torch.Tensor):
            dtype = str(obj.dtype).removeprefix("torch.")
            try:
                return self.tensor_type(tuple(self._dim(d) for d in obj.shape), dtype), None
            except TorchIRError:  # a dtype the IR has no name for
                return None, None
        if isinstance(obj, bool) or isinstance(obj, torch.SymBool):
            return self.scalar_type("bool"), obj if isinstance(obj, bool) else None
        if isinstance(obj, (int, torch.SymInt)):
            made = set(self.unbacked)
            try:
                value = self._dim(obj)
            except TorchIRError:  # an expression outside the IR's grammar: its value is not known
                return self.scalar_type("int"), None
            if self.unbacked - made:  # a number the kernel read from data (item): known only at run time
                return self.scalar_type("int"), None
            return self.scalar_type("int"), value
        if isinstance(obj, (float, torch.SymFloat)):
            return self.scalar_type("float"), obj if isinstance(obj, float) else None
        return None, None

    # -- symbols
    def _mode(self) -> Any:
        if self._fake_mode is None:
            from torch._subclasses.fake_tensor import FakeTensorMode

            self._fake_mode = FakeTensorMode(shape_env=self._shape_env(), allow_non_fake_inputs=True)
            self._fake_mode.cache_enabled = False  # its symbolic cache entries cost more than they save here
        return self._fake_mode

    def _shape_env(self) -> Any:
        if self._env is None:
            from torch.fx.experimental.symbolic_shapes import ShapeEnv

            self._env = ShapeEnv()
            for name in self.graph_symbols:
                self._symbol(name)
        return self._env

    def _symbol(self, name: str) -> Any:
        if name in self._symbols:
            return self._symbols[name]
        import sympy
        from torch._dynamo.source import ConstantSource
        from torch.fx.experimental.symbolic_shapes import DimDynamic

        rng = self.graph_symbols.get(name)
        hint = 17 + 4 * len(self._symbols)
        if rng is not None:
            hint = max(hint, rng.min, 2)
            if rng.max is not None and hint > rng.max:
                hint = max(rng.max, rng.min)
        sym = self._shape_env().create_symbol(
            hint, source=ConstantSource(f"torch_ir_{name}"), dynamic_dim=DimDynamic.DYNAMIC
        )
        self._symbols[name] = sym
        self._hints[sym] = hint
        self._rename[sym] = sympy.Symbol(name, integer=True, positive=True)
        return sym

    def _symint(self, dim: Any) -> Any:
        """A symbolic size for ``dim``: a parsed expression (``SymExpr``, or text parsed by the IR's one
        bounded grammar through ``tensor_type.dim``), rebuilt as a sympy expression node by node."""
        if isinstance(dim, str) and not hasattr(dim, "fold"):
            dim = self.tensor_type.dim(dim)
        if isinstance(dim, int):
            return dim
        cached = self._symints.get(dim)
        if cached is not None:
            return cached
        import sympy

        expr = dim.fold(self._sympy_leaf, _sympy_node)
        hint = int(expr.xreplace({s: sympy.Integer(h) for s, h in self._hints.items()}))
        value = self._shape_env().create_symintnode(expr, hint=hint)
        self._symints[dim] = value
        return value

    def _sympy_leaf(self, leaf: int | str) -> Any:
        import sympy

        return sympy.Integer(leaf) if isinstance(leaf, int) else self._symbol(leaf)

    def _specialized_symbols(self) -> list[str]:
        """The graph's symbols that a kernel has guarded to one value since they were made."""
        if self._env is None:
            return []
        replacements = self._env.replacements
        return [
            name
            for name, sym in self._symbols.items()
            if getattr(replacements.get(sym), "is_number", False) or _pinned(self._env.var_to_range.get(sym))
        ]

    def _forget_symbols(self) -> None:
        """Start the next symbolic call from a fresh ``ShapeEnv``."""
        self._env = self._fake_mode = None
        self._symbols, self._hints, self._rename, self._symints = {}, {}, {}, {}

    def _dim(self, d: Any) -> Any:
        if isinstance(d, int):
            return d
        expr = d.node.expr
        if getattr(expr, "is_number", False):
            return int(expr)
        self.unbacked.update(str(s) for s in expr.free_symbols if s not in self._rename)
        return self.tensor_type.dim(str(expr.xreplace(self._rename)).replace(" ", ""))


def _sympy_node(op: str, children: list[Any]) -> Any:
    """One operation of a parsed dimension as sympy (torch's functions for ``//``, ``Max`` and the rest)."""
    import sympy

    functions = sympy_functions()
    if op == "neg":
        return -children[0]
    if op == "+":
        return children[0] + children[1]
    if op == "-":
        return children[0] - children[1]
    if op == "*":
        return children[0] * children[1]
    if op == "/":
        return children[0] / children[1]
    if op == "**":
        return children[0] ** children[1]
    if op == "//":
        return functions["FloorDiv"](*children)
    if op == "%":
        return sympy.Mod(*children)
    if op == "Abs":
        return sympy.Abs(children[0])
    return functions[op](*children)


def _pinned(bounds: Any) -> bool:
    """Whether a symbol's value range holds one value only."""
    return bounds is not None and bounds.lower == bounds.upper


def iter_operands(operands: Sequence[Any]) -> Iterator[Operand]:
    """The operands that hold a value, lists flattened, in order (as ``Node.inputs`` lists values)."""
    for operand in operands:
        if isinstance(operand, Operand):
            yield operand
        elif isinstance(operand, list):
            for item in operand:
                if isinstance(item, Operand):
                    yield item


def same_type(old: Any, new: Any, symbols: Mapping[str, Any] | None = None) -> bool:
    """Whether a recorded type ``old`` and a computed one ``new`` agree, symbolic dims compared by value (``2*s``
    and ``s+s`` are): each dim is an int or a parsed expression (``torch_ir.ir.symbolic``); nothing is
    re-parsed. With the graph's ``symbols`` (``name -> range`` with ``min`` and ``max``), a recorded static size
    where ``new`` has one computed from a number read from data agrees when the trace pinned that number to
    the value that gives the recorded size (``u0+5`` with ``u0`` in 3..3 is 8), or when the graph does not
    declare it at all (the trace knew it, the kernel does not)."""
    if type(old) is not type(new) or old.dtype != new.dtype or len(old.shape) != len(new.shape):
        return False
    for a, b in zip(old.shape, new.shape):
        if a == b:
            continue
        if isinstance(a, int) and isinstance(b, int):
            return False
        if symbols is not None and isinstance(a, int) and hasattr(b, "same_value_as"):
            if b.symbols - set(symbols):
                continue
            pinned = {n: r.min for n, r in symbols.items() if n in b.symbols and r.min == r.max}
            if b.evaluate(pinned) != a:
                return False
            continue
        expr, other = (a, b) if hasattr(a, "same_value_as") else (b, a)
        if not hasattr(expr, "same_value_as") or not expr.same_value_as(other):
            return False
    return True


def fits_unbacked(recorded: Any, computed: Any, unbacked: set[str]) -> bool:
    """Whether ``computed``, whose kernel made the ``unbacked`` symbols for sizes that depend on data, can be
    ``recorded``: same kind, dtype and rank, and equal sizes wherever the computed one has none of them (the
    trace recorded what those sizes are; a fresh symbol is no contradiction)."""
    pairs = _dim_pairs(recorded, computed)
    if isinstance(pairs, bool):
        return pairs
    return all(a == b or (hasattr(b, "symbols") and b.symbols & unbacked) for a, b in pairs)


def fits(recorded: Any, computed: Any) -> bool:
    """Whether a type computed with some symbols fixed to example sizes can be ``recorded``: same kind,
    dtype and rank, and the same size wherever the recorded one is static."""
    pairs = _dim_pairs(recorded, computed)
    if isinstance(pairs, bool):
        return pairs
    return all(not isinstance(a, int) or a == b for a, b in pairs)


def _dim_pairs(recorded: Any, computed: Any) -> bool | list[tuple[Any, Any]]:
    """The sizes of two types side by side; False when their kind, dtype or rank differ, True when they agree
    and have no sizes (scalars)."""
    if type(recorded) is not type(computed) or recorded.dtype != computed.dtype:
        return False
    if not hasattr(recorded, "shape") or not hasattr(computed, "shape"):
        return True
    if len(recorded.shape) != len(computed.shape):
        return False
    return list(zip(recorded.shape, computed.shape))


_FUNCTIONS: dict[str, Any] = {}


def sympy_functions() -> dict[str, Any]:
    """torch's sympy functions that symbolic dims are written with (``FloorDiv``, ``Max`` ...), by name."""
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


_NON_FINITE = ("inf", "-inf", "nan", "infinity", "-infinity")
"""How files write the non-finite numbers of attributes (any case)."""


def convert_attr(value: Any, argument: Any) -> Any:
    """A JSON-typed attribute as the Python value the op's schema argument expects."""
    import torch

    if value is None:
        return None
    kind = str(getattr(argument, "real_type", argument.type))
    if ("ScalarType" in kind or "Layout" in kind or "MemoryFormat" in kind) and isinstance(value, str):
        return _torch_enum(value)
    if "Device" in kind:
        return torch.device("meta")
    numeric = "float" in kind or "Scalar" in kind or "number" in kind  # torch calls a Scalar "number"
    if numeric and isinstance(value, str) and value.lower() in _NON_FINITE:
        return float(value)
    if numeric and isinstance(value, list):  # List[float]: non-finite items written as text
        return [float(v) if isinstance(v, str) and v.lower() in _NON_FINITE else v for v in value]
    if isinstance(value, dict) and set(value) == {"real", "imag"}:
        return complex(value["real"], value["imag"])
    if isinstance(value, dict) and "float" in value:
        return float(value["float"])
    if isinstance(value, float) and math.isnan(value):
        return value
    return value


def _torch_enum(name: str) -> Any:
    """The dtype, layout or memory format ``name`` names (``float32``); ``ValueError`` for anything else."""
    import torch

    value = getattr(torch, name, None) if name.isidentifier() and not name.startswith("_") else None
    if not isinstance(value, (torch.dtype, torch.layout, torch.memory_format)):
        raise ValueError(f"{name!r} is not a torch dtype, layout or memory format")
    return value


_INFERRED: dict[Any, list[Any]] = {}


def infer_types(
    op_type: str,
    operands: Sequence[Any],
    attrs: Mapping[str, Any],
    tensor_type: type,
    scalar_type: type,
    symbols: Mapping[str, Any] | None = None,
) -> list[Any] | str:
    """The result types of one call about to be built (``Graph.create_op``), or the reason why they cannot
    be inferred. Results of calls whose operands are all tensors of static shape are cached.
    ``ShapeFunctionError`` when a registered shape function fails."""
    key = _static_key(op_type, operands, attrs, tensor_type)
    if key is not None and key in _INFERRED:
        return list(_INFERRED[key])
    inference = TypeInference(tensor_type, scalar_type, symbols)
    computed = inference.infer(op_type, operands, attrs)
    if inference.specialized:
        return f"the kernel specializes {', '.join(inference.specialized)} to an example size"
    if computed is None:
        return inference.reason
    types = [t for t, _ in computed]
    if key is not None and len(_INFERRED) < 65536:
        _INFERRED[key] = types
    return list(types)


def _static_key(op_type: str, operands: Sequence[Any], attrs: Mapping[str, Any], tensor_type: type) -> Any:
    """A cache key for a call whose operands are all tensors of static shape (None otherwise)."""
    parts: list[Any] = []
    for operand in operands:
        if isinstance(operand, list):
            inner = [_static_type(o, tensor_type) if isinstance(o, Operand) else ("=", repr(o)) for o in operand]
            if None in inner:
                return None
            parts.append(tuple(inner))
        elif isinstance(operand, Operand):
            t = _static_type(operand, tensor_type)
            if t is None:
                return None
            parts.append(t)
        else:
            parts.append(("=", repr(operand)))
    return (_GENERATION(), op_type, tuple(parts), repr(attrs))


def _static_type(operand: Operand, tensor_type: type) -> Any:
    """The operand's type when it is a tensor of static shape, else None."""
    t = operand.type
    return t if type(t) is tensor_type and all(isinstance(d, int) for d in t.shape) else None


__all__ = [
    "MISSING",
    "Inferred",
    "Operand",
    "ShapeFunctionError",
    "TypeInference",
    "convert_attr",
    "fits",
    "infer_types",
    "iter_operands",
    "same_type",
    "sympy_functions",
]
