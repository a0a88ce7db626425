"""annotate-shapes: recompute every value's type with torch's meta / fake kernels.

Each node's call is rebuilt from the IR by walking the op's schema (an argument is in ``attrs`` by name,
else it is the next entry of ``args``) and run on meta tensors, or on fake tensors with a ``ShapeEnv``
when a shape is symbolic (the graph's symbols become symbolic sizes, so ``seq`` dims propagate). Results
are cached per (op, operand types, attributes), so 32 identical layers cost one. A shape function
registered with ``torch_ir.ops`` takes precedence, for ops torch cannot run. Regions are annotated first,
innermost first; a region op's result types then follow from its regions by its contract. Computing one
call's types is the op registry's (``torch_ir.ops.type_inference``); this pass walks the graphs, keeps
what each scalar is known to be, caches signatures and compares with the recorded types.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from torch_ir.errors import PassError
from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ir.regions import region_result_types
from torch_ir.ir.symbolic import FUNCTIONS, SymExpr, parse_dim
from torch_ir.ir.types import ScalarType, TensorType, ValueType
from torch_ir.ops.type_inference import Operand, ShapeFunctionError, TypeInference, fits, fits_unbacked, same_type
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
        "every region: the pass manager hands it each region (innermost first) before the graph that owns it, "
        "which types each region op from its regions"
    )

    strict: bool = True
    """Fail on a computed type that differs from the recorded one (else the computed type wins)."""
    fallback: bool = True
    """Keep recorded types of ops no kernel or shape function can run (else fail)."""

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        where = f"region {ctx.region.rstrip('/')}" if ctx.region else ("init graph" if ctx.in_init else "graph")
        return PassResult(graph, _Inference(graph, self, where, ctx).run())


class _Inference:
    """Type inference over one graph: symbols, scalar expressions and the signature cache."""

    def __init__(self, graph: Graph, options: AnnotateShapes, where: str, ctx: PassContext):
        self.graph = graph
        self.options = options
        self.where = where
        self.ctx = ctx
        self.cache: dict[Any, Any] = {}
        self.scalars: dict[Value, Any] = {}
        module = ctx.module
        loaded = graph.table.loaded_from is not None or (module is not None and module.loaded_from is not None)
        self.types = TypeInference(TensorType, ScalarType, graph.symbols, untrusted=loaded)
        self.reasons: dict[Any, str] = {}
        self.last_reason = ""
        self.specialized: dict[Any, list[str]] = {}
        self.unbacked: dict[Any, set[str]] = {}

    # -- driver
    def run(self) -> bool:
        import torch  # noqa: F401  (kernels live there)

        for value in [*self.graph.inputs, *self.graph.weights.values()]:
            if value.type is None:
                raise PassError(f"{self.where}: {value.ref} has no type; annotate-shapes needs input and weight types")
            if isinstance(value.type, ScalarType) and value.type.kind == "int" and _IDENT.fullmatch(value.name):
                symbol = parse_dim(value.name) if value.name not in FUNCTIONS else None
                if isinstance(symbol, SymExpr):  # an int input stands for the symbol of its name
                    self.scalars[value] = symbol
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
            computed = self.compute(node)
            self.cache[key] = computed
            if computed is None:
                self.reasons[key] = self.last_reason
            elif self.types.specialized and not node.regions:
                self.specialized[key] = self.types.specialized
            if computed is not None and self.types.unbacked and not node.regions:
                self.unbacked[key] = set(self.types.unbacked)
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
            elif not same_type(old, new, self.graph.symbols):
                if self.agrees_on_trace_device(node, value.index, old):
                    continue  # the meta kernel differs from the device the model was traced as, which stands
                if key in self.unbacked and fits_unbacked(old, new, self.unbacked[key]):
                    continue  # sizes the kernel can only name afresh (they depend on data): the trace's stand
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
            if old is not None and new is not None and not fits(old, new) and self.options.strict:
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
        if device == "meta":
            return False
        operands = self.operands(node)
        new = self.types.infer_on_device(node.op_type, operands, node.attrs, device, len(node.outputs), index)
        if new is not None and self.types.specialized:
            return fits(recorded, new)
        return new is not None and same_type(recorded, new)

    # -- computing one signature
    def compute(self, node: Node) -> list[tuple[ValueType | None, Any]] | None:
        if node.regions:  # region ops: result types follow from their regions (annotated before)
            types = region_result_types(node)
            if types is not None:
                return [(t, None) for t in types]
        try:
            computed = self.types.infer(node.op_type, self.operands(node), node.attrs, len(node.outputs))
        except ShapeFunctionError as exc:
            raise PassError(f"{self.where}: node {node.name}: {exc}") from exc.__cause__
        if computed is None:
            return self.give_up(node, self.types.reason)
        return computed

    def operands(self, node: Node) -> list[Any]:
        """``node.args`` with each value as an ``Operand``: its type and what its scalar value is known to be."""
        return [self.operand(a) for a in node.args]

    def operand(self, arg: Any) -> Any:
        if isinstance(arg, Value):
            return Operand(arg.type, self.scalars.get(arg))
        if isinstance(arg, list):
            return [self.operand(a) for a in arg]
        return arg

    def give_up(self, node: Node, reason: str) -> list[tuple[ValueType | None, Any]] | None:
        """Keep the node's recorded types (None: nothing computed), or fail when fallback is off."""
        if not self.options.fallback:
            raise PassError(f"{self.where}: node {node.name} ({node.op_type}): cannot compute its type: {reason}")
        self.last_reason = reason
        self.ctx.log(f"annotate-shapes: keeping recorded types of {node.name} ({node.op_type}): {reason}", 2)
        return None
