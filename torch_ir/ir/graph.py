"""The graph IR: values, weights, nodes, and the networkx-backed ``Graph`` that owns them.

A ``Graph`` keeps its nodes in a doubly linked list (their topological order) and mirrors every use of a
node's result as an edge of a ``networkx.MultiDiGraph``. Passes mutate it only through its methods
(``create_node``, ``insert_before``, ``replace_all_uses_with``, ``erase`` ...), never through networkx.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Union

import networkx as nx

from torch_ir.errors import IRError
from torch_ir.ir.types import SymbolRange, ValueType

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-/#]+")

WEIGHT_KINDS = ("parameter", "buffer", "constant", "derived")
"""``derived`` weights are computed by the init graph from other weights."""

Literal = Union[int, float, bool, str, None, list, dict]
"""A JSON-typed attribute or list element."""


class Value:
    """An SSA value: a graph input, a weight, or a result of a node."""

    __slots__ = ("__weakref__", "index", "name", "producer", "type")

    def __init__(self, name: str, type: ValueType | None, producer: Node | None = None, index: int = 0):
        self.name = name
        self.type = type
        self.producer = producer
        self.index = index

    @property
    def shape(self) -> tuple[int | str, ...] | None:
        """The value's shape, or None when its type is unknown."""
        return None if self.type is None else self.type.shape

    @property
    def dtype(self) -> str | None:
        """The value's dtype name, or None when its type is unknown."""
        return None if self.type is None else self.type.dtype

    @property
    def ref(self) -> str:
        """How the text form and JSON refer to this value: ``%name``."""
        return f"%{self.name}"

    def __repr__(self) -> str:
        return f"{self.ref}: {self.type}"


class Weight(Value):
    """A parameter, buffer or constant, referenced by name (``@fc1.weight``).

    ``aliases`` are the other state_dict names of the same storage (GPT-2's ``lm_head.weight`` for
    ``transformer.wte.weight``); ``persistent`` says whether it is in the model's state_dict;
    ``data`` holds the value inline when it was known at extraction (small lifted constants).
    """

    __slots__ = ("aliases", "data", "kind", "persistent")

    def __init__(
        self,
        name: str,
        type: ValueType | None,
        kind: str = "parameter",
        aliases: Sequence[str] = (),
        persistent: bool = True,
        data: Any = None,
    ):
        super().__init__(name, type)
        if kind not in WEIGHT_KINDS:
            raise IRError(f"weight {name!r}: unknown kind {kind!r}; expected one of {WEIGHT_KINDS}")
        self.kind = kind
        self.aliases = tuple(aliases)
        self.persistent = persistent
        self.data = data

    @property
    def ref(self) -> str:
        """How the text form and JSON refer to this weight: ``@name``."""
        return f"@{self.name}"

    @property
    def names(self) -> tuple[str, ...]:
        """The weight's name followed by its aliases."""
        return (self.name, *self.aliases)

    def __repr__(self) -> str:
        return f"{self.ref}: {self.type} {self.kind}"


Arg = Union[Value, list]
"""A positional operand of a node: a value, or a list of values and literals (``[%a, %b]``, ``[None, %i]``)."""


class Node:
    """An operation: ``op_type`` (an ATen overload such as ``aten.linear.default``), operands, attributes.

    ``args`` are the operands that carry values, in the order of the op's schema; ``attrs`` hold every
    other argument by its schema name, JSON-typed; ``meta`` holds the module path, source line and
    anything else a backend may want.
    """

    __slots__ = ("_next", "_prev", "args", "attrs", "graph", "meta", "name", "op_type", "outputs", "regions")

    def __init__(
        self,
        name: str,
        op_type: str,
        args: Sequence[Arg] = (),
        attrs: dict[str, Literal] | None = None,
        meta: dict[str, Any] | None = None,
    ):
        self.name = name
        self.op_type = op_type
        self.args: list[Arg] = list(args)
        self.attrs: dict[str, Literal] = dict(attrs or {})
        self.outputs: list[Value] = []
        self.meta: dict[str, Any] = dict(meta or {})
        self.graph: Graph | None = None
        self._prev: Node | None = None
        self._next: Node | None = None
        self.regions: list[Graph] = []
        """Nested graphs the node owns (``cond``'s branches, a loop's body); see ``torch_ir.ir.regions``."""

    @property
    def inputs(self) -> list[Value]:
        """Every value the node reads, flattened from ``args`` in order."""
        return list(iter_arg_values(self.args))

    @property
    def output(self) -> Value:
        """The single result of a node with exactly one."""
        if len(self.outputs) != 1:
            raise IRError(f"node {self.name} ({self.op_type}) has {len(self.outputs)} results, not one")
        return self.outputs[0]

    @property
    def module_path(self) -> str:
        """The path of the module that produced the node ('' for the root module)."""
        stack = self.meta.get("module_stack") or []
        return str(stack[-1][0]) if stack else ""

    def __repr__(self) -> str:
        outs = ", ".join(v.ref for v in self.outputs)
        return f"<Node {self.name}: {outs} = {self.op_type}>"


def iter_arg_values(args: Iterable[Any]) -> Iterator[Value]:
    """Yield the values in a node's args, lists flattened, literals skipped."""
    for arg in args:
        if isinstance(arg, Value):
            yield arg
        elif isinstance(arg, list):
            for item in arg:
                if isinstance(item, Value):
                    yield item


class Graph:
    """An ordered, SSA graph of nodes with named inputs, weights and outputs.

    Nodes are kept in topological order; every use of a node's result is an edge of the networkx
    ``MultiDiGraph`` (edge data: the value's name and the operand slot). ``init`` is the optional init
    graph that computes derived weights from the others once, when weights are bound.
    """

    def __init__(self) -> None:
        self._nx: nx.MultiDiGraph = nx.MultiDiGraph()
        self._root = Node("<root>", "<root>")
        self._root._prev = self._root._next = self._root
        self._count = 0
        self._nodes_cache: tuple[Node, ...] | None = None
        self._uses: dict[Value, dict[Node, int]] = {}
        self._values: dict[str, Value] = {}
        self._node_names: set[str] = set()
        self._name_counters: dict[str, int] = {}
        self.inputs: list[Value] = []
        self._weights: dict[str, Weight] = {}
        self._outputs: list[Value] = []
        self.input_structure: dict[str, Any] | None = None
        self.output_structure: dict[str, Any] | None = None
        self.symbols: dict[str, SymbolRange] = {}
        self.init: Graph | None = None
        self.meta: dict[str, Any] = {}

    # ----------------------------------------------------------------- reading

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The operations in topological order (cached until the next mutation)."""
        if self._nodes_cache is None:
            out = []
            node = self._root._next
            while node is not self._root:
                assert node is not None
                out.append(node)
                node = node._next
            self._nodes_cache = tuple(out)
        return self._nodes_cache

    def __len__(self) -> int:
        return self._count

    @property
    def weights(self) -> dict[str, Weight]:
        """The weights by name, in order (a copy: mutate with ``add_weight`` / ``remove_weight``)."""
        return dict(self._weights)

    @property
    def outputs(self) -> list[Value]:
        """The graph's results, in order."""
        return list(self._outputs)

    @property
    def nx(self) -> nx.MultiDiGraph:
        """A read-only view of the networkx graph: one node per operation, one edge per use."""
        return self._nx.copy(as_view=True)

    def value(self, name: str) -> Value:
        """The input or node result called ``name``."""
        try:
            return self._values[name]
        except KeyError:
            raise IRError(f"no value %{name} in the graph") from None

    def has_value(self, name: str) -> bool:
        """Whether an input or node result is called ``name``."""
        return name in self._values

    def has_weight(self, name: str) -> bool:
        """Whether a weight is called ``name`` (without copying the weight table)."""
        return name in self._weights

    def weight(self, name: str) -> Weight:
        """The weight called ``name``."""
        try:
            return self._weights[name]
        except KeyError:
            raise IRError(f"no weight @{name} in the graph") from None

    def walk(self) -> Iterator[tuple[str, Node]]:
        """Every node, nested ones included, in order: ``(path, node)``.

        ``path`` names the regions that hold the node, outermost first (``"cond_1/true/"``, or ``""`` for
        a node of this graph); a region op comes before the nodes of its regions.
        """
        from torch_ir.ir.regions import region_name

        for node in self.nodes:
            yield "", node
            for index, region in enumerate(node.regions):
                prefix = f"{node.name}/{region_name(node.op_type, index)}/"
                for path, inner in region.walk():
                    yield prefix + path, inner

    def walk_regions(self) -> Iterator[tuple[str, Graph]]:
        """Every region nested in this graph, at any depth: ``(path, region)``, outermost first."""
        from torch_ir.ir.regions import region_name

        for node in self.nodes:
            for index, region in enumerate(node.regions):
                path = f"{node.name}/{region_name(node.op_type, index)}/"
                yield path, region
                for inner_path, inner in region.walk_regions():
                    yield path + inner_path, inner

    def values(self) -> Iterator[Value]:
        """Every input, weight and node result."""
        yield from self.inputs
        yield from self._weights.values()
        for node in self.nodes:
            yield from node.outputs

    def users(self, value: Value) -> list[Node]:
        """The nodes that read ``value``, each once, in the order they started to use it."""
        return list(self._uses.get(value, ()))

    def num_uses(self, value: Value) -> int:
        """How many operand slots read ``value`` (graph outputs not counted)."""
        return sum(self._uses.get(value, {}).values())

    def is_output(self, value: Value) -> bool:
        """Whether ``value`` is one of the graph's results."""
        return any(v is value for v in self._outputs)

    # ------------------------------------------------------------------ naming

    def fresh_name(self, base: str) -> str:
        """A value/node name not used yet in this graph, derived from ``base``."""
        base = base or "v"
        if base not in self._values and base not in self._node_names:
            return base
        counter = self._name_counters.get(base, 0)
        while True:
            counter += 1
            candidate = f"{base}_{counter}"
            if candidate not in self._values and candidate not in self._node_names:
                self._name_counters[base] = counter
                return candidate

    def _claim_value_name(self, value: Value) -> None:
        if not NAME_PATTERN.fullmatch(value.name):
            raise IRError(f"invalid value name {value.name!r}: use letters, digits and _ . - / #")
        if value.name in self._values:
            raise IRError(f"value %{value.name} is defined twice")
        self._values[value.name] = value

    # -------------------------------------------------------------- inputs etc

    def add_input(self, name: str, type: ValueType | None) -> Value:
        """Append a graph input."""
        value = Value(name, type)
        self._claim_value_name(value)
        self.inputs.append(value)
        self._uses[value] = {}
        return value

    def add_weight(
        self,
        name: str,
        type: ValueType | None,
        kind: str = "parameter",
        aliases: Sequence[str] = (),
        persistent: bool = True,
        data: Any = None,
    ) -> Weight:
        """Add a named weight; its name must be new among the weights."""
        if name in self._weights:
            raise IRError(f"weight @{name} is defined twice")
        if not name:
            raise IRError("a weight needs a non-empty name")
        weight = Weight(name, type, kind, aliases, persistent, data)
        self._weights[name] = weight
        self._uses[weight] = {}
        return weight

    def remove_weight(self, weight: Weight) -> None:
        """Remove a weight that nothing reads any more."""
        if self._uses.get(weight):
            users = ", ".join(n.name for n in self._uses[weight])
            raise IRError(f"cannot remove weight @{weight.name}: still used by {users}")
        if self.is_output(weight):
            raise IRError(f"cannot remove weight @{weight.name}: it is a graph output")
        if self._weights.get(weight.name) is not weight:
            raise IRError(f"weight @{weight.name} is not in this graph")
        del self._weights[weight.name]
        self._uses.pop(weight, None)

    def rename_weight(self, weight: Weight, name: str) -> None:
        """Give a weight a new name (the order of weights is kept)."""
        if name == weight.name:
            return
        if name in self._weights:
            raise IRError(f"cannot rename @{weight.name} to @{name}: that weight exists")
        self._weights = {(name if k == weight.name else k): w for k, w in self._weights.items()}
        weight.name = name

    def set_outputs(self, values: Sequence[Value]) -> None:
        """Set the graph's results."""
        self._outputs = list(values)

    # --------------------------------------------------------------- mutation

    def create_node(
        self,
        op_type: str,
        args: Sequence[Arg] = (),
        attrs: dict[str, Literal] | None = None,
        output_types: Sequence[ValueType | None] = (),
        *,
        name: str | None = None,
        output_names: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
        before: Node | None = None,
        after: Node | None = None,
    ) -> Node:
        """Create a node with one result per entry of ``output_types`` and insert it.

        By default the node goes at the end; ``before=`` / ``after=`` place it next to another node.
        Names are made unique from ``name`` / ``output_names`` (or the op's short name).
        """
        base = name or _short_op_name(op_type)
        if output_names is not None and len(output_names) != len(output_types):
            raise IRError(f"{op_type}: {len(output_names)} output names for {len(output_types)} results")
        if output_names is None:
            node_name = self.fresh_name(base)
            if len(output_types) == 1:
                names = [node_name]
            else:
                names = [f"{node_name}#{i}" for i in range(len(output_types))]
                names = [n if n not in self._values else self.fresh_name(n.replace("#", "_")) for n in names]
        else:
            names = list(output_names)
            node_name = name if name is not None else (names[0] if names else self.fresh_name(base))
        node = Node(node_name, op_type, args, attrs, meta)
        for i, (vname, vtype) in enumerate(zip(names, output_types, strict=True)):
            node.outputs.append(Value(vname, vtype, node, i))
        if before is not None:
            self.insert_before(before, node)
        elif after is not None:
            self.insert_after(after, node)
        else:
            self.insert_before(self._root, node)
        return node

    def append(self, node: Node) -> Node:
        """Insert a detached node at the end."""
        return self.insert_before(self._root, node)

    def insert_before(self, anchor: Node, node: Node) -> Node:
        """Insert a detached node (built with ``Node(...)`` and its outputs set) before ``anchor``."""
        if anchor is not self._root and anchor.graph is not self:
            raise IRError(f"cannot insert before {anchor.name}: it is not in this graph")
        self._attach(node)
        prev = anchor._prev
        assert prev is not None
        node._prev, node._next = prev, anchor
        prev._next = node
        anchor._prev = node
        return node

    def insert_after(self, anchor: Node, node: Node) -> Node:
        """Insert a detached node after ``anchor``."""
        if anchor.graph is not self:
            raise IRError(f"cannot insert after {anchor.name}: it is not in this graph")
        assert anchor._next is not None
        return self.insert_before(anchor._next, node)

    def move_before(self, anchor: Node, node: Node) -> None:
        """Move a node of this graph to just before ``anchor``."""
        self._unlink(node)
        prev = anchor._prev
        assert prev is not None
        node._prev, node._next = prev, anchor
        prev._next = node
        anchor._prev = node
        self._nodes_cache = None

    def _attach(self, node: Node) -> None:
        if node.graph is not None:
            raise IRError(f"node {node.name} already belongs to a graph")
        if not NAME_PATTERN.fullmatch(node.name):
            raise IRError(f"invalid node name {node.name!r}")
        if node.name in self._node_names:
            raise IRError(f"node name {node.name} is used twice")
        for value in node.outputs:
            value.producer = node
            self._claim_value_name(value)
            self._uses[value] = {}
        node.graph = self
        self._node_names.add(node.name)
        self._nx.add_node(node)
        for slot, value in enumerate(node.inputs):
            self._add_use(value, node, slot)
        self._count += 1
        self._nodes_cache = None

    def _add_use(self, value: Value, node: Node, slot: int) -> None:
        uses = self._uses.get(value)
        if uses is None:
            raise IRError(f"node {node.name} reads {value.ref}, which is not defined in this graph")
        uses[node] = uses.get(node, 0) + 1
        if value.producer is not None:
            self._nx.add_edge(value.producer, node, key=slot, value=value.name, slot=slot)

    def _drop_uses(self, node: Node) -> None:
        for value in node.inputs:
            uses = self._uses.get(value)
            if uses is not None and node in uses:
                del uses[node]
        for pred in list(self._nx.predecessors(node)):
            self._nx.remove_edges_from([(pred, node, k) for k in list(self._nx[pred][node])])

    def set_args(self, node: Node, args: Sequence[Arg]) -> None:
        """Replace a node's operands, keeping the use lists and edges right."""
        self._drop_uses(node)
        node.args = list(args)
        for slot, value in enumerate(node.inputs):
            self._add_use(value, node, slot)

    def replace_all_uses_with(self, old: Value, new: Value) -> int:
        """Make every node (and graph output) that reads ``old`` read ``new``; return how many changed."""
        if old is new:
            return 0
        users = list(self._uses.get(old, ()))
        for user in users:
            new_args = [_replace_in_arg(a, old, new) for a in user.args]
            self.set_args(user, new_args)
        replaced = len(users)
        for i, out in enumerate(self._outputs):
            if out is old:
                self._outputs[i] = new
                replaced += 1
        return replaced

    def erase(self, node: Node) -> None:
        """Remove a node whose results nothing reads."""
        if node.graph is not self:
            raise IRError(f"cannot erase {node.name}: it is not in this graph")
        for value in node.outputs:
            if self._uses.get(value):
                users = ", ".join(n.name for n in self._uses[value])
                raise IRError(f"cannot erase {node.name}: {value.ref} is still used by {users}")
            if self.is_output(value):
                raise IRError(f"cannot erase {node.name}: {value.ref} is a graph output")
        self._drop_uses(node)
        for value in node.outputs:
            del self._values[value.name]
            del self._uses[value]
        self._nx.remove_node(node)
        self._node_names.discard(node.name)
        self._unlink(node)
        node.graph = None
        self._count -= 1

    def _unlink(self, node: Node) -> None:
        prev, nxt = node._prev, node._next
        assert prev is not None and nxt is not None
        prev._next = nxt
        nxt._prev = prev
        node._prev = node._next = None
        self._nodes_cache = None

    def verify(self) -> None:
        """Check the graph's structure; raise ``VerificationError`` naming the first problem."""
        from torch_ir.ir.verify import verify_graph

        verify_graph(self)

    # ----------------------------------------------------------------- compare

    def signature(self) -> tuple:
        """A hashable description of everything the graph holds, used for equality."""
        return (
            tuple((v.name, v.type) for v in self.inputs),
            tuple((w.name, w.type, w.kind, w.aliases, w.persistent, repr(w.data)) for w in self._weights.values()),
            tuple(
                (
                    n.name,
                    n.op_type,
                    repr([_arg_key(a) for a in n.args]),
                    repr(n.attrs),
                    tuple((v.name, v.type) for v in n.outputs),
                    repr(n.meta),
                    tuple(r.signature() for r in n.regions),
                )
                for n in self.nodes
            ),
            tuple(v.ref for v in self._outputs),
            repr(self.input_structure),
            repr(self.output_structure),
            tuple(sorted(self.symbols.items())),
            None if self.init is None else self.init.signature(),
            repr(self.meta),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self.signature() == other.signature()

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        from torch_ir.ir.text import print_graph

        return print_graph(self)


def _short_op_name(op_type: str) -> str:
    parts = op_type.split(".")
    return parts[1] if len(parts) >= 3 else parts[-1]


def _replace_in_arg(arg: Arg, old: Value, new: Value) -> Arg:
    if arg is old:
        return new
    if isinstance(arg, list):
        return [new if item is old else item for item in arg]
    return arg


def _arg_key(arg: Any) -> Any:
    if isinstance(arg, Value):
        return arg.ref
    if isinstance(arg, list):
        return [_arg_key(a) for a in arg]
    return arg
