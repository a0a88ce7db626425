"""The pattern rewriter: ``RewritePattern``, ``PatternRewriter``, ``apply_patterns``, ``PatternRewritePass``.

After xDSL's ``RewritePattern`` and ``PatternRewriteWalker``: a pattern looks at one node and, when it
matches, changes the graph through the ``PatternRewriter`` it is given (which inserts ops with inferred
result types, carries the matched node's metadata to its replacements and erases dead producers). The
greedy driver ``apply_patterns`` runs a pattern set over a worklist to a fixed point, in every function,
region and init graph of a module.

Simple patterns can be declared instead of written: ``Op`` trees with ``Var`` captures::

    x = Var("x")
    double_neg = RewriteRule(Op("aten.neg.default", Op("aten.neg.default", x)), x)
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from torch_ir.errors import IRError, PassError, TorchIRError
from torch_ir.ir.graph import Graph, Node, Value, iter_arg_values
from torch_ir.ir.module import Module
from torch_ir.ir.operands import MISSING
from torch_ir.ir.types import ValueType
from torch_ir.ops import op_info
from torch_ir.ops.spelling import check_op_type, check_operands, required_operands
from torch_ir.passes.base import Pass, PassContext, PassResult
from torch_ir.passes.driver import nested_sites, sites

Replacement = Union[Value, Node, Sequence[Union[Value, None]]]
"""What replaces a node: a value (its single result), a node (its results) or one value per result (None
for a result that nothing reads)."""


class RewritePattern:
    """A rewrite: override ``match_and_rewrite``; change the graph only through ``rewriter``.

    ``op_types`` (optional) limits the nodes the driver offers to the pattern, which saves the calls.
    A pattern that does not match simply returns without touching the rewriter.
    """

    op_types: ClassVar[tuple[str, ...]] = ()

    def match_and_rewrite(self, node: Node, rewriter: PatternRewriter) -> None:
        """Look at ``node``; when it matches, rewrite it through ``rewriter``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement match_and_rewrite()")

    @property
    def label(self) -> str:
        """How logs and errors name the pattern."""
        return type(self).__name__


class PatternRewriter:
    """The only way a pattern changes the graph; it records what changed for the driver's worklist.

    ``node`` is the node the pattern was offered. Ops created here go before it by default, take its
    ``meta`` (source module, stack) unless given one, and get result types inferred from their kernels.
    """

    def __init__(self, graph: Graph, node: Node | None = None):
        self.graph = graph
        self.node = node
        self.changed = False
        self.added: list[Node] = []
        self.touched: list[Node] = []
        self.released: list[Value] = []
        self.erased = 0

    # -- building
    def create_op(
        self,
        op_type: str,
        *args: Any,
        name: str | None = None,
        meta: dict[str, Any] | None = None,
        before: Node | None = None,
        after: Node | None = None,
        output_types: Sequence[ValueType | None] | None = None,
        **operands: Any,
    ) -> Node:
        """Insert ``op_type(*args, **operands)`` (before the matched node unless placed); types are inferred."""
        if before is None and after is None:
            before = self.node
        node = self.graph.create_op(
            op_type,
            *args,
            name=name,
            meta=self._meta(meta),
            before=before,
            after=after,
            output_types=output_types,
            **operands,
        )
        self._added(node)
        return node

    def emit(self, op_type: str, *args: Any, **operands: Any) -> Value:
        """``create_op(...)`` of a single-result op, returning that result (for building expressions)."""
        return self.create_op(op_type, *args, **operands).output

    def create_node(
        self,
        op_type: str,
        args: Sequence[Any],
        attrs: dict[str, Any] | None,
        output_types: Sequence[ValueType | None],
        **kwargs: Any,
    ) -> Node:
        """Insert a node with explicit args, attrs and result types (``Graph.create_node``)."""
        if "before" not in kwargs and "after" not in kwargs:
            kwargs["before"] = self.node
        kwargs["meta"] = self._meta(kwargs.get("meta"))
        node = self.graph.create_node(op_type, args, attrs, output_types, **kwargs)
        self._added(node)
        return node

    def _meta(self, meta: dict[str, Any] | None) -> dict[str, Any]:
        if meta is not None:
            return dict(meta)
        return dict(self.node.meta) if self.node is not None else {}

    def _added(self, node: Node) -> None:
        self.added.append(node)
        self.changed = True

    @contextmanager
    def building(self) -> Iterator[None]:
        """Create ops atomically: when the block raises, the ops it created are erased again (newest first)
        and the graph is as it was before the block; the error propagates."""
        start, changed = len(self.added), self.changed
        try:
            yield
        except BaseException:
            for node in reversed(self.added[start:]):
                if node.graph is self.graph:
                    self.graph.erase(node)
            del self.added[start:]
            self.changed = changed
            raise

    # -- replacing and erasing
    def replace_op(self, node: Node, new: Replacement) -> None:
        """Make every use of ``node``'s results read ``new`` instead, then erase ``node`` and dead producers.

        For a node with several results, give one value per result, None for a result nothing reads.
        """
        values = _values_of(new)
        if len(values) != len(node.outputs):
            raise IRError(f"cannot replace {node.name}: it has {len(node.outputs)} results, given {len(values)}")
        for old, value in zip(node.outputs, values):
            if value is None:
                if self.graph.num_uses(old) or self.graph.is_output(old):
                    raise IRError(f"cannot replace {node.name}: its result {old.ref} is read, give a value for it")
                continue
            if value is old:
                raise IRError(f"cannot replace {node.name} by its own result {value.ref}")
            if not isinstance(value, Value) or not self.graph.defines(value):
                raise IRError(f"cannot replace {node.name} by {value!r}: not a value of this graph")
        for old, value in zip(node.outputs, values):
            if value is not None:
                self.replace_all_uses_with(old, value)
        self.erase_op(node)

    def replace_matched_op(self, new: Replacement) -> None:
        """``replace_op`` on the node the pattern was offered."""
        if self.node is None:
            raise IRError("replace_matched_op: the rewriter has no matched node")
        self.replace_op(self.node, new)

    def replace_subgraph(self, root: Node, new: Replacement, matched: Iterable[Node] = ()) -> None:
        """Replace ``root`` by ``new``; also erase every node of ``matched`` that nothing reads any more."""
        self.replace_op(root, new)
        for node in reversed(list(matched)):
            if node.graph is self.graph and not self._used(node):
                self.erase_op(node)

    def replace_all_uses_with(self, old: Value, new: Value) -> None:
        """Make every reader of ``old`` read ``new`` (the readers are revisited)."""
        readers = self.graph.users(old)
        if self.graph.replace_all_uses_with(old, new):
            self.touched.extend(readers)
            self.changed = True

    def set_operand(self, node: Node, name: str, value: Any) -> None:
        """Set an operand of ``node`` by schema name."""
        node.set_operand(name, value)
        self.touched.append(node)
        self.changed = True

    def modified(self, node: Node) -> None:
        """Say that ``node`` was changed in place (its attrs or meta), so the driver revisits it."""
        self.touched.append(node)
        self.changed = True

    def erase_op(self, node: Node) -> None:
        """Erase ``node`` (its results must be unused), then every pure producer this leaves unused."""
        if node.graph is not self.graph:
            raise IRError(f"cannot erase {node.name}: it is not in this graph")
        operands = list(iter_arg_values(node.args))
        self.graph.erase(node)
        self.erased += 1
        self.changed = True
        self.released.extend(operands)
        self._erase_dead(operands)

    def _used(self, node: Node) -> bool:
        return any(self.graph.num_uses(v) or self.graph.is_output(v) for v in node.outputs)

    def _erase_dead(self, values: list[Value]) -> None:
        stack = list(values)
        while stack:
            producer = stack.pop().producer
            if producer is None or producer.graph is not self.graph or self._used(producer):
                continue
            if not op_info(producer.op_type).pure:
                continue
            operands = list(iter_arg_values(producer.args))
            stack.extend(operands)
            self.released.extend(operands)
            self.graph.erase(producer)
            self.erased += 1


def _values_of(new: Replacement) -> list[Value | None]:
    if isinstance(new, Value):
        return [new]
    if isinstance(new, Node):
        return list(new.outputs)
    return list(new)


@dataclass
class RewriteResult:
    """What ``apply_patterns`` did: rewrites per pattern, sweeps over the graph, whether it reached a fixed point."""

    modified: bool = False
    iterations: int = 0
    rewrites: int = 0
    erased: int = 0
    converged: bool = False
    counts: dict[str, int] = field(default_factory=dict)


def apply_patterns(
    target: Graph | Module,
    patterns: Sequence[RewritePattern],
    max_iterations: int = 10,
    *,
    max_rewrites: int | None = None,
    regions: bool = True,
) -> RewriteResult:
    """Apply ``patterns`` greedily to ``target`` until none matches (a fixed point) or ``max_iterations``
    sweeps are done, in every graph the pass driver walks: each function of a module, the regions nested in
    it (innermost first) and the init graph; for a graph, the graph and its regions (``regions=False``: the
    graph alone). The result adds up what happened in each graph.

    Each sweep puts every node on a worklist in topological order; a rewrite re-queues the ops it created,
    the readers of replaced values, the producers of erased ops' operands (and an operand's reader when it
    is the only one left, as MLIR's greedy driver does), and erases producers that became dead.
    A sweep that rewrites nothing ends the loop (``converged``). ``max_rewrites`` (default 8 per node + 64)
    bounds one sweep, so patterns that undo each other cannot loop forever.
    """
    if max_iterations < 1:
        raise PassError(f"apply_patterns: max_iterations must be at least 1, got {max_iterations}")
    if isinstance(target, Module):
        graphs = [site.graph for site in sites(target, "graph")]
    elif regions:
        graphs = [*(site.graph for site in nested_sites(target, "", "")), target]
    else:
        graphs = [target]
    total = RewriteResult(converged=True)
    by_type: dict[str, list[RewritePattern]] = {}
    for graph in graphs:
        result = _apply_to_graph(graph, patterns, max_iterations, max_rewrites, by_type)
        total.rewrites += result.rewrites
        total.erased += result.erased
        total.iterations = max(total.iterations, result.iterations)
        total.modified = total.modified or result.modified
        total.converged = total.converged and result.converged
        for label, count in result.counts.items():
            total.counts[label] = total.counts.get(label, 0) + count
    return total


def _apply_to_graph(
    graph: Graph,
    patterns: Sequence[RewritePattern],
    max_iterations: int,
    max_rewrites: int | None,
    by_type: dict[str, list[RewritePattern]],
) -> RewriteResult:
    """The greedy driver on one graph."""

    def offered(op_type: str) -> list[RewritePattern]:
        found = by_type.get(op_type)
        if found is None:
            found = by_type[op_type] = [p for p in patterns if not p.op_types or op_type in p.op_types]
        return found

    result = RewriteResult()
    if not patterns:
        result.converged = True
        return result
    for _ in range(max_iterations):
        result.iterations += 1
        limit = max_rewrites if max_rewrites is not None else 8 * len(graph) + 64
        changed_this_sweep = 0
        worklist: deque[Node] = deque(graph.nodes[:])
        queued = set(worklist)
        while worklist:
            node = worklist.popleft()
            queued.discard(node)
            if node.graph is not graph:
                continue
            for pattern in offered(node.op_type):
                rewriter = PatternRewriter(graph, node)
                try:
                    pattern.match_and_rewrite(node, rewriter)
                except Exception as exc:
                    what = f": {exc}" if isinstance(exc, TorchIRError) else f" failed: {type(exc).__name__}: {exc}"
                    error = PassError(f"pattern {pattern.label} on node {node.name} ({node.op_type}){what}")
                    error.node = node
                    raise error from exc
                if not rewriter.changed:
                    continue
                changed_this_sweep += 1
                result.rewrites += 1
                result.erased += rewriter.erased
                result.counts[pattern.label] = result.counts.get(pattern.label, 0) + 1
                for again in _requeue(graph, node, rewriter):
                    if again not in queued:
                        queued.add(again)
                        worklist.append(again)
                break
            if changed_this_sweep >= limit:
                break
        if changed_this_sweep:
            result.modified = True
        else:
            result.converged = True
            break
    return result


def _requeue(graph: Graph, node: Node, rewriter: PatternRewriter) -> list[Node]:
    out: list[Node] = []
    for new in rewriter.added:
        if new.graph is graph:
            out.append(new)
            for value in new.outputs:
                out.extend(graph.users(value))
    out.extend(n for n in rewriter.touched if n.graph is graph)
    for value in rewriter.released:  # lost a reader: its producer, and a now single reader, may match now
        if value.producer is not None and value.producer.graph is graph:
            out.append(value.producer)
        if graph.defines(value):
            readers = graph.users(value)
            if len(readers) == 1:
                out.append(readers[0])
    if node.graph is graph:
        out.append(node)
    return out


@dataclass(frozen=True)
class PatternRewritePass(Pass):
    """Base of passes that are a pattern set: implement ``patterns()``; register like any pass.

    The pass manager hands it every graph of the module: each function, the regions inside it, and the
    init graph (set ``rewrite_init = False`` for patterns that only make sense outside the init graph).
    """

    rewrite_init: ClassVar[bool] = True
    max_iterations: int = 10
    """Sweeps of the greedy driver at most."""

    def patterns(self) -> Sequence[RewritePattern]:
        """The pattern set of the pass."""
        raise NotImplementedError(f"pass {self.name} does not implement patterns()")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        if ctx.in_init and not self.rewrite_init:
            return PassResult(graph, False)
        result = apply_patterns(graph, list(self.patterns()), self.max_iterations, regions=False)
        counts = ", ".join(f"{k} x{v}" for k, v in result.counts.items()) or "no match"
        ctx.log(f"{self.name}: {counts} in {result.iterations} sweep(s) ({ctx.where})", 1)
        if not result.converged:
            ctx.log(f"{self.name}: no fixed point after {result.iterations} sweeps ({ctx.where})", 0)
        return PassResult(graph, result.modified)


# ------------------------------------------------------------------ declarative patterns


@dataclass(frozen=True)
class Var:
    """A capture in a declarative pattern: matches any operand (``where`` may restrict it), bound by name.

    A name used twice must bind the same value; names starting with ``_`` are wildcards, never bound.
    """

    name: str
    where: Callable[[Any], bool] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise PassError(f"Var({self.name!r}): a capture needs a name")


class Op:
    """A node in a declarative pattern: ``Op("aten.relu.default", Op("aten.linear.default", x, w, b))``.

    Positional operands follow the op's schema; keyword operands are matched by schema name (those not
    given match anything). Inner ops must have a single use unless ``single_use=False``; ``capture`` binds
    the matched node itself (an ``Op`` with a capture that appears twice in a pattern matches one node);
    ``where`` is a predicate on the node. An op whose registry entry is commutative (``aten.mul.Tensor``,
    ``aten.add.Tensor`` with alpha 1) matches its first two operands in either order.

    Checked when built, against the op registry: every op type must be known, operand names must be the
    schema's and positional operands no more than it takes; a misspelling raises ``PassError`` with the
    closest names (``aten.rsqrt`` -> ``aten.rsqrt.default``, ``keep_dim`` -> ``keepdim``).
    """

    def __init__(
        self,
        op_type: str | tuple[str, ...],
        /,
        *operands: Any,
        single_use: bool = True,
        capture: str | None = None,
        where: Callable[[Node], bool] | None = None,
        **named: Any,
    ):
        self.op_types = (op_type,) if isinstance(op_type, str) else tuple(op_type)
        self.positional = operands
        self.named = named
        self.single_use = single_use
        self.capture = capture
        self.where = where
        if not self.op_types:
            raise PassError("Op(): give an op type")
        self.slots: dict[str, dict[str, Any]] = {t: self._slots(t) for t in self.op_types}
        """The operand patterns by schema name, for each op type (checked when built)."""

    def _slots(self, op_type: str) -> dict[str, Any]:
        what = f"pattern Op({op_type!r})"
        try:
            check_op_type(op_type, what)
            names = check_operands(op_type, len(self.positional), self.named, what)
        except TorchIRError as exc:
            raise PassError(str(exc)) from None
        if names is None:  # a registered op torch does not know: operands by position
            out = {str(i): p for i, p in enumerate(self.positional)}
            out.update(self.named)
            return out
        return dict(zip(names, [*self.positional, *self.named.values()]))

    def operand_patterns(self, op_type: str) -> dict[str, Any]:
        """The operand patterns by schema name, for a node of ``op_type``."""
        return self.slots[op_type]

    def __repr__(self) -> str:
        return f"Op({'|'.join(self.op_types)})"


@dataclass
class Match:
    """A successful match: the captures by name, and the matched nodes (the root first)."""

    captures: dict[str, Any]
    nodes: list[Node]

    def __getitem__(self, name: str) -> Any:
        return self.captures[name]


_State = tuple[dict[str, Any], tuple[Node, ...]]
"""A partial match: the captures so far, and the nodes matched so far (inner nodes first)."""


def match(pattern: Op, node: Node) -> Match | None:
    """Match a declarative ``pattern`` rooted at ``node``; None when it does not match.

    The search backtracks: a commutative op tries its operands in the given order, then swapped, and a
    choice is undone when a later operand fails to match.
    """
    for captures, nodes in _match_node(pattern, node, ({}, ()), root=True):
        return Match(captures, [node, *(n for n in dict.fromkeys(nodes) if n is not node)])
    return None


def _match_node(pattern: Op, node: Node, state: _State, root: bool) -> Iterator[_State]:
    graph = node.graph
    if graph is None or node.op_type not in pattern.op_types:
        return
    captures = state[0]
    if pattern.capture is not None and pattern.capture in captures:
        if captures[pattern.capture] is node:  # a shared sub-pattern, matched already
            yield state
        return
    if not root and pattern.single_use:
        if len(node.outputs) != 1 or graph.num_uses(node.output) != 1 or graph.is_output(node.output):
            return
    if pattern.where is not None and not pattern.where(node):
        return
    for slots in _operand_orders(node, pattern.slots[node.op_type]):
        for found, inner in _match_operands(list(slots.items()), 0, node, state):
            if pattern.capture is not None:
                found = {**found, pattern.capture: node}
            yield found, (*inner, node)


def _operand_orders(node: Node, slots: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The operand patterns as given, then, for a node of a commutative op, with its first two swapped."""
    yield slots
    info = op_info(node.op_type)
    if not info.commutative:
        return
    arguments = info.arguments
    first, second = (arguments[0].name, arguments[1].name) if arguments and len(arguments) > 1 else ("0", "1")
    if (first not in slots and second not in slots) or not info.commutes(node.operands):
        return
    swapped = {k: v for k, v in slots.items() if k not in (first, second)}
    if second in slots:
        swapped[first] = slots[second]
    if first in slots:
        swapped[second] = slots[first]
    yield swapped


def _match_operands(
    items: list[tuple[str, Any]], index: int, node: Node | list[Any], state: _State
) -> Iterator[_State]:
    """Match the operand patterns ``items[index:]`` against the operands of ``node`` (or the items of a list
    operand, by position), one after the other, backtracking."""
    if index == len(items):
        yield state
        return
    name, sub = items[index]
    if isinstance(node, list):
        actual = node[int(name)]
    else:
        actual = node.operands.get(name, MISSING)
        if actual is MISSING:
            try:
                actual = node.operand(name)
            except IRError:
                return
    for after in _match_operand(sub, actual, state):
        yield from _match_operands(items, index + 1, node, after)


def _holds_pattern(items: Sequence[Any]) -> bool:
    return any(isinstance(i, (Op, Var)) or (isinstance(i, (list, tuple)) and _holds_pattern(i)) for i in items)


def _match_operand(sub: Any, actual: Any, state: _State) -> Iterator[_State]:
    captures, nodes = state
    if isinstance(sub, Var):
        if sub.where is not None and not sub.where(actual):
            return
        if sub.name.startswith("_"):
            yield state
        elif sub.name in captures:
            bound = captures[sub.name]
            same = bound is actual if isinstance(bound, Value) or isinstance(actual, Value) else bound == actual
            if same:
                yield state
        else:
            yield {**captures, sub.name: actual}, nodes
    elif isinstance(sub, Op):
        if isinstance(actual, Value) and actual.producer is not None:
            yield from _match_node(sub, actual.producer, state, root=False)
    elif isinstance(sub, (list, tuple)) and _holds_pattern(sub):
        if isinstance(actual, (list, tuple)) and len(actual) == len(sub):
            yield from _match_operands(list(zip(map(str, range(len(sub))), sub)), 0, list(actual), state)
    elif isinstance(sub, Value) or isinstance(actual, Value):
        if sub is actual:
            yield state
    elif sub == actual:
        yield state


RewriteFn = Callable[[Match, PatternRewriter], Union[Replacement, None]]


class RewriteRule(RewritePattern):
    """A declarative pattern: ``RewriteRule(match_op, replacement)``.

    ``replacement`` is a ``Var`` (replace by a captured value), an ``Op`` tree over captures (built with
    inferred types), or a function ``(match, rewriter) -> Value | Node | values | None`` (None: no rewrite).
    Checked when built: the replacement reads only names the pattern captures, and an ``Op`` template
    names one op type and gives every operand the op requires. The ops a replacement creates are created
    atomically: when one fails, those before it are erased again.
    """

    def __init__(self, pattern: Op, replacement: Op | Var | RewriteFn, name: str | None = None):
        if not isinstance(pattern, Op):
            raise PassError(f"RewriteRule: the pattern must be an Op, got {type(pattern).__name__}")
        self.pattern = pattern
        self.replacement = replacement
        self.name = name or f"{'|'.join(pattern.op_types)}-rule"
        self.op_types = pattern.op_types  # type: ignore[misc]
        if isinstance(replacement, (Op, Var)):
            check_replacement(replacement, captured_names(pattern), f"rule {self.name}")
        elif not callable(replacement):
            raise PassError(f"rule {self.name}: the replacement must be a Var, an Op or a function")

    @property
    def label(self) -> str:
        """How logs and errors name the rule."""
        return self.name

    def match_and_rewrite(self, node: Node, rewriter: PatternRewriter) -> None:
        found = match(self.pattern, node)
        if found is None:
            return
        with rewriter.building():
            if isinstance(self.replacement, Var):
                new: Replacement | None = found[self.replacement.name]
            elif isinstance(self.replacement, Op):
                new = build(self.replacement, found.captures, rewriter)
            else:
                new = self.replacement(found, rewriter)
        if new is None:
            return
        rewriter.replace_subgraph(node, new, found.nodes[1:])


def captured_names(pattern: Op) -> set[str]:
    """The names a pattern binds: its ``Var``s (wildcards aside) and ``capture``s, at any depth."""
    names: set[str] = set()
    stack: list[Any] = [pattern]
    while stack:
        item = stack.pop()
        if isinstance(item, Var) and not item.name.startswith("_"):
            names.add(item.name)
        elif isinstance(item, Op):
            if item.capture:
                names.add(item.capture)
            stack.extend(item.positional)
            stack.extend(item.named.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return names


def check_replacement(template: Op | Var, bound: set[str], what: str) -> None:
    """``PassError`` when a replacement reads a name the pattern does not bind, or an ``Op`` template does not
    name one op type or misses an operand its op requires."""
    if isinstance(template, Var):
        if template.name not in bound:
            close = difflib.get_close_matches(template.name, sorted(bound), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PassError(
                f"{what}: the replacement reads Var({template.name!r}), which the pattern does not capture "
                f"(it captures {', '.join(sorted(bound)) or 'nothing'}){hint}"
            )
        return
    if len(template.op_types) != 1:
        raise PassError(f"{what}: a replacement Op names one op type, not {' | '.join(template.op_types)}")
    op_type = template.op_types[0]
    missing = [n for n in required_operands(op_type) if n not in template.slots[op_type]]
    if missing:
        raise PassError(f"{what}: replacement Op({op_type!r}) misses required operand(s) {', '.join(missing)}")
    stack = [*template.positional, *template.named.values()]
    while stack:
        sub = stack.pop()
        if isinstance(sub, (Op, Var)):
            check_replacement(sub, bound, what)
        elif isinstance(sub, (list, tuple)):
            stack.extend(sub)


def build(template: Op, captures: Mapping[str, Any], rewriter: PatternRewriter) -> Node:
    """Create the ops of an ``Op`` template whose operands are captures, literals or other templates."""
    op_type = template.op_types[0]

    def operand(sub: Any) -> Any:
        if isinstance(sub, Var):
            return captures[sub.name]
        if isinstance(sub, Op):
            return build(sub, captures, rewriter).output
        if isinstance(sub, (list, tuple)):
            return [operand(item) for item in sub]
        return sub

    args = [operand(a) for a in template.positional]
    named = {k: operand(v) for k, v in template.named.items()}
    return rewriter.create_op(op_type, *args, **named)


__all__ = [
    "Match",
    "Op",
    "PatternRewritePass",
    "PatternRewriter",
    "RewritePattern",
    "RewriteResult",
    "RewriteRule",
    "Var",
    "apply_patterns",
    "build",
    "captured_names",
    "check_replacement",
    "match",
]
