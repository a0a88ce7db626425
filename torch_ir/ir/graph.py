"""The graph IR: values and their uses, weights, nodes, and the ``Graph`` that owns them.

A ``Graph`` keeps its nodes in a doubly linked list (their topological order). Uses are kept once, on the
values: every operand slot that reads a value is a ``Use(node, index)`` in that value's use list, so
``users``, ``num_uses`` and ``replace_all_uses_with`` cost what the uses cost. ``graph.nodes`` is a live view
of the list that tolerates mutation while it is walked; the networkx graph (``graph.nx``) is built from the
use lists when an analysis asks for it. Weights live in a ``WeightTable`` that every function of a module
shares (a graph made on its own has a table of its own); each graph keeps its own uses of them. Passes
mutate a graph only through its methods (``create_node``, ``insert_before``, ``replace_all_uses_with``,
``erase`` ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Union, overload

from torch_ir.errors import IRError
from torch_ir.ir import operands as _operands
from torch_ir.ir.types import SymbolRange, ValueType

if TYPE_CHECKING:
    import networkx as nx

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-/#]+")

WEIGHT_KINDS = ("parameter", "buffer", "constant", "derived")
"""``derived`` weights are computed by the init graph from other weights."""

Literal = Union[int, float, bool, str, None, list, dict]
"""A JSON-typed attribute or list element."""


class Use(NamedTuple):
    """One use of a value: the node that reads it and the operand slot (index into ``node.inputs``)."""

    node: Node
    index: int

    @property
    def operand_name(self) -> str | None:
        """The schema name of the operand that holds the value (for a list operand, the list's name)."""
        slot = 0
        for name, arg in self.node.operands.items():
            count = sum(1 for _ in iter_arg_values([arg]))
            if slot <= self.index < slot + count:
                return name
            slot += count
        return None


class Value:
    """An SSA value: a graph input or a result of a node (a ``Weight`` is a value too).

    ``uses`` lists every operand slot that reads it, in the order the uses were made.
    """

    __slots__ = ("__weakref__", "_graph", "_uses", "index", "name", "producer", "type")

    def __init__(self, name: str, type: ValueType | None, producer: Node | None = None, index: int = 0):
        self.name = name
        self.type = type
        self.producer = producer
        self.index = index
        self._graph: Graph | None = None
        self._uses: dict[Use, None] = {}

    @property
    def graph(self) -> Graph | None:
        """The graph that defines the value (None for a weight, which a table holds, or a detached value)."""
        return self._graph

    @property
    def uses(self) -> list[Use]:
        """Every operand slot that reads this value, in the order the uses were made."""
        return list(self._uses)

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

    __slots__ = ("_table", "aliases", "data", "kind", "persistent")

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
        self._table: WeightTable | None = None

    @property
    def uses(self) -> list[Use]:
        """Every operand slot that reads this weight, in every graph of its table (each graph keeps its own)."""
        table = self._table
        if table is None:
            return []
        return [use for graph in table.graphs for use in graph._weight_uses.get(self, ())]

    @property
    def ref(self) -> str:
        """How the text form and JSON refer to this weight: ``@name``."""
        return f"@{self.name}"

    @property
    def names(self) -> tuple[str, ...]:
        """The weight's name followed by its aliases."""
        return (self.name, *self.aliases)

    def declaration(self) -> tuple[Any, ...]:
        """What two weights of one name must agree on to be the same weight: type, kind, aliases, persistence."""
        return (self.type, self.kind, self.aliases, self.persistent)

    def __repr__(self) -> str:
        return f"{self.ref}: {self.type} {self.kind}"


class WeightTable:
    """The weights of a module by name, in order, and the init graph that computes the derived ones.

    Every function of a module reads this one table; a graph built on its own has a table of its own.
    ``graphs`` are the graphs that read it (the module's functions), so removing a weight can check that
    none of them still reads or writes it.
    """

    def __init__(self) -> None:
        self.weights: dict[str, Weight] = {}
        self.init: Graph | None = None
        self.graphs: list[Graph] = []
        self.owner: Any = None
        """A weak reference to the module whose table this is (None for a graph built on its own)."""
        self.loaded_from: str | None = None
        """The file the module was read from; None for one built in this process. An IR read from a file is
        untrusted: it runs only allow-listed ops, and the high-level runners run it in a worker process."""

    def add(self, weight: Weight) -> Weight:
        """Add a weight whose name is new in the table."""
        if not weight.name:
            raise IRError("a weight needs a non-empty name")
        if weight.name in self.weights:
            raise IRError(f"weight @{weight.name} is defined twice")
        weight._table = self
        self.weights[weight.name] = weight
        return weight

    def attach(self, graph: Graph) -> None:
        """Count ``graph`` among the readers of the table (once)."""
        if not any(g is graph for g in self.graphs):
            self.graphs.append(graph)

    def detach(self, graph: Graph) -> None:
        """Stop counting ``graph`` among the readers of the table."""
        self.graphs = [g for g in self.graphs if g is not graph]

    def reader(self, weight: Weight, also: Graph | None = None) -> str:
        """What still reads or writes ``weight`` in the graphs of the table (and ``also``), or ''."""
        for graph in {id(g): g for g in (*self.graphs, *((also,) if also is not None else ()))}.values():
            users = graph._weight_uses.get(weight)
            if users:
                return "still used by " + ", ".join(dict.fromkeys(use.node.name for use in users))
            if graph.is_live(weight):
                return "it is a graph output or a state value"
            if graph.is_state_target(weight.name):
                return "a state update writes it"
        return ""


STATE_KINDS = ("buffer", "parameter", "input")
"""What a state update writes: a buffer or parameter (by weight name), or a graph input (by value name)."""


class StateUpdate:
    """An explicit write of model state: after a call, ``value`` is the new content of ``target``.

    A buffer updated in ``forward`` (``self.count.add_(1)``, a KV cache), a parameter changed in place, or
    an input the model writes to. The IR itself stays functional: the write happens after the call, and
    the interpreter applies it there.
    """

    __slots__ = ("kind", "target", "value")

    def __init__(self, kind: str, target: str, value: Value):
        if kind not in STATE_KINDS:
            raise IRError(f"state update of {target!r}: unknown kind {kind!r}; expected one of {STATE_KINDS}")
        self.kind = kind
        self.target = target
        self.value = value

    @property
    def target_ref(self) -> str:
        """How the text form names the target: ``@buffer`` or ``%input``."""
        return f"{'%' if self.kind == 'input' else '@'}{self.target}"

    def __repr__(self) -> str:
        return f"<StateUpdate {self.target_ref} = {self.value.ref}>"


Arg = Union[Value, list]
"""A positional operand of a node: a value, or a list of values and literals (``[%a, %b]``, ``[None, %i]``)."""


class RegionList(list):  # type: ignore[type-arg]
    """A node's regions: a list of graphs whose ``owner`` is set to the node as they are added."""

    def __init__(self, owner: Node, regions: Iterable[Graph] = ()):
        super().__init__()
        self._owner = owner
        self.extend(regions)

    def _own(self, region: Graph) -> Graph:
        region.owner = self._owner
        return region

    def append(self, region: Graph) -> None:  # type: ignore[override]
        super().append(self._own(region))

    def extend(self, regions: Iterable[Graph]) -> None:  # type: ignore[override]
        super().extend(self._own(r) for r in regions)

    def insert(self, index: Any, region: Graph) -> None:  # type: ignore[override]
        super().insert(index, self._own(region))

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            super().__setitem__(index, [self._own(r) for r in value])
        else:
            super().__setitem__(index, self._own(value))


class Node:
    """An operation: ``op_type`` (an ATen overload such as ``aten.linear.default``), operands, attributes.

    ``args`` are the operands that carry values, in the order of the op's schema; ``attrs`` hold every
    other argument by its schema name, JSON-typed; ``meta`` holds the module path, source line and
    anything else a backend may want; ``regions`` the nested graphs of a control-flow op.
    """

    __slots__ = (
        "_erased",
        "_next",
        "_prev",
        "_regions",
        "args",
        "attrs",
        "graph",
        "meta",
        "name",
        "op_type",
        "outputs",
    )

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
        self._erased = False
        self._regions = RegionList(self)

    @property
    def regions(self) -> RegionList:
        """Nested graphs the node owns (``cond``'s branches, a loop's body); see ``torch_ir.ir.regions``."""
        return self._regions

    @regions.setter
    def regions(self, regions: Iterable[Graph]) -> None:
        self._regions = RegionList(self, regions)

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

    def operand(self, name: str, default: Any = _operands.MISSING) -> Any:
        """The operand called ``name`` in the op's schema (a ``Value`` or a literal), wherever it is stored.

        An absent operand gives ``default`` when one is passed, else the schema default, else ``IRError``.
        """
        return _operands.operand(self, name, default)

    @property
    def operands(self) -> dict[str, Any]:
        """Every operand by schema name, in schema order (``{"input": %x, "weight": @w, "bias": None, ...}``)."""
        return _operands.read_operands(self)

    def set_operand(self, name: str, value: Any) -> None:
        """Set the operand ``name`` to a ``Value`` or a literal; the graph's uses follow."""
        self.set_operands(**{name: value})

    def set_operands(self, /, **values: Any) -> None:
        """Set several operands by schema name at once (checked first, then applied); ``self`` is one of
        them for most ATen ops (``node.set_operands(self=x)``)."""
        current = _operands.read_operands(self)
        current.update(values)
        args, attrs = _operands.split_operands(self.op_type, current, f"node {self.name}")
        if self.graph is not None:
            self.graph._set_args_and_attrs(self, args, attrs)
        else:
            self.args, self.attrs = list(args), attrs

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


class NodeList(Sequence[Node]):
    """A live, ordered view of a graph's nodes.

    Iterating walks the linked list as it is now, so a pass may erase, insert or move nodes while it walks:
    an erased node's successor is still reached, and nodes inserted after the current one are visited.
    ``len`` costs nothing; indexing takes a snapshot that lasts until the next mutation.
    """

    __slots__ = ("_graph",)

    def __init__(self, graph: Graph):
        self._graph = graph

    def __iter__(self) -> Iterator[Node]:
        root = self._graph._root
        node = root._next
        while node is not root and node is not None:
            yield node
            nxt = node._next
            while node._erased and nxt is not None and nxt._erased:  # the next one went too: follow on
                node, nxt = nxt, nxt._next
            node = nxt

    def __reversed__(self) -> Iterator[Node]:
        root = self._graph._root
        node = root._prev
        while node is not root and node is not None:
            yield node
            prev = node._prev
            while node._erased and prev is not None and prev._erased:
                node, prev = prev, prev._prev
            node = prev

    def __len__(self) -> int:
        return self._graph._count

    @overload
    def __getitem__(self, index: int) -> Node: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Node, ...]: ...

    def __getitem__(self, index: int | slice) -> Node | tuple[Node, ...]:
        return self._graph._snapshot()[index]

    def __contains__(self, node: object) -> bool:
        return isinstance(node, Node) and node.graph is self._graph

    def index(self, node: Any, start: int = 0, stop: int | None = None) -> int:
        """The position of ``node`` in the order."""
        return self._graph._snapshot().index(node, start, len(self) if stop is None else stop)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (NodeList, tuple, list)):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"NodeList({len(self)} nodes)"


class Graph:
    """An ordered, SSA graph of nodes with named inputs, weights and outputs.

    Nodes are kept in topological order. ``weights`` come from the graph's ``WeightTable`` (shared by the
    functions of a module); ``init`` is the table's init graph, which computes derived weights from the
    others once, when weights are bound. A region (a nested graph of a control-flow op) has its ``owner``
    set to that op.
    """

    def __init__(self, table: WeightTable | None = None) -> None:
        self._root = Node("<root>", "<root>")
        self._root._prev = self._root._next = self._root
        self._count = 0
        self._version = 0
        self._snapshot_cache: tuple[tuple[Node, ...], int] | None = None
        self._nx_cache: tuple[Any, int] | None = None
        self._values: dict[str, Value] = {}
        self._node_names: set[str] = set()
        self._name_counters: dict[str, int] = {}
        self._weight_uses: dict[Weight, dict[Use, None]] = {}
        self.inputs: list[Value] = []
        if table is None:
            table = WeightTable()
            table.graphs.append(self)
        self._table = table
        self._outputs: list[Value] = []
        self._state_updates: list[StateUpdate] = []
        self.input_structure: dict[str, Any] | None = None
        self.output_structure: dict[str, Any] | None = None
        self.symbols: dict[str, SymbolRange] = {}
        self.meta: dict[str, Any] = {}
        self.owner: Node | None = None
        """The region op that owns this graph, when it is a region."""

    # ----------------------------------------------------------------- reading

    @property
    def nodes(self) -> NodeList:
        """The operations in topological order: a live view that tolerates mutation while walked."""
        return NodeList(self)

    def _snapshot(self) -> tuple[Node, ...]:
        cached = self._snapshot_cache
        if cached is not None and cached[1] == self._version:
            return cached[0]
        nodes = tuple(NodeList(self))
        self._snapshot_cache = (nodes, self._version)
        return nodes

    def __len__(self) -> int:
        return self._count

    @property
    def table(self) -> WeightTable:
        """The weight table the graph reads (its module's, or its own)."""
        return self._table

    @property
    def weights(self) -> dict[str, Weight]:
        """The weights by name, in order (a copy: mutate with ``add_weight`` / ``remove_weight``)."""
        return dict(self._table.weights)

    @property
    def init(self) -> Graph | None:
        """The init graph of the weight table: it computes the derived weights from the others."""
        return self._table.init

    @init.setter
    def init(self, graph: Graph | None) -> None:
        self._table.init = graph

    @property
    def outputs(self) -> list[Value]:
        """The graph's results, in order."""
        return list(self._outputs)

    @property
    def nx(self) -> nx.MultiDiGraph:
        """The networkx graph of the uses (one node per operation, one edge per use of a node's result,
        keyed by operand slot, with the value's name), built on first use and kept until the next mutation."""
        cached = self._nx_cache
        if cached is not None and cached[1] == self._version:
            return cached[0]
        import networkx as nx

        g = nx.MultiDiGraph()
        nodes = self._snapshot()
        g.add_nodes_from(nodes)
        g.add_edges_from(
            (value.producer, node, slot, {"value": value.name, "slot": slot})
            for node in nodes
            for slot, value in enumerate(iter_arg_values(node.args))
            if value.producer is not None
        )
        view = g.copy(as_view=True)
        self._nx_cache = (view, self._version)
        return view

    def value(self, name: str) -> Value:
        """The input or node result called ``name``."""
        try:
            return self._values[name]
        except KeyError:
            raise IRError(f"no value %{name} in the graph") from None

    def has_value(self, name: str) -> bool:
        """Whether an input or node result is called ``name``."""
        return name in self._values

    def defines(self, value: Value) -> bool:
        """Whether ``value`` itself (not just its name) is an input, weight or node result of this graph."""
        if isinstance(value, Weight):
            return value._table is self._table and self._table.weights.get(value.name) is value
        return value._graph is self

    def has_weight(self, name: str) -> bool:
        """Whether a weight is called ``name`` (without copying the weight table)."""
        return name in self._table.weights

    def weight(self, name: str) -> Weight:
        """The weight called ``name``."""
        try:
            return self._table.weights[name]
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
        yield from self._table.weights.values()
        for node in self.nodes:
            yield from node.outputs

    def _local_uses(self, value: Value) -> Iterable[Use]:
        if isinstance(value, Weight):
            return self._weight_uses.get(value, ())
        return value._uses

    def users(self, value: Value) -> list[Node]:
        """The nodes of this graph that read ``value``, each once, in the order they started to use it."""
        return list(dict.fromkeys(use.node for use in self._local_uses(value)))

    def uses(self, value: Value) -> list[Use]:
        """Every operand slot of this graph that reads ``value``: ``Use(node, index)``, ``index`` into
        ``node.inputs``."""
        return list(self._local_uses(value))

    def num_uses(self, value: Value) -> int:
        """How many operand slots of this graph read ``value`` (graph outputs not counted)."""
        if isinstance(value, Weight):
            return len(self._weight_uses.get(value, ()))
        return len(value._uses)

    def is_output(self, value: Value) -> bool:
        """Whether ``value`` is one of the graph's results."""
        return any(v is value for v in self._outputs)

    @property
    def state_updates(self) -> list[StateUpdate]:
        """The explicit state writes of a call, in order (a copy: change with ``set_state_updates``)."""
        return list(self._state_updates)

    def live_values(self) -> list[Value]:
        """What a call must produce: the outputs, then the values of the state updates."""
        return [*self._outputs, *(u.value for u in self._state_updates)]

    def is_live(self, value: Value) -> bool:
        """Whether ``value`` is an output or the new content of some state (never dead code)."""
        return self.is_output(value) or any(u.value is value for u in self._state_updates)

    def is_state_target(self, name: str, kind: str = "") -> bool:
        """Whether a state update writes the weight (or, with ``kind="input"``, the input) called ``name``."""
        return any(u.target == name and (u.kind == "input") == (kind == "input") for u in self._state_updates)

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
        value._graph = self

    # -------------------------------------------------------------- inputs etc

    def add_input(self, name: str, type: ValueType | None) -> Value:
        """Append a graph input."""
        value = Value(name, type)
        self._claim_value_name(value)
        self.inputs.append(value)
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
        """Add a named weight to the weight table; its name must be new there."""
        return self._table.add(Weight(name, type, kind, aliases, persistent, data))

    def remove_weight(self, weight: Weight) -> None:
        """Remove a weight that nothing reads any more (in any graph of the table)."""
        if self._table.weights.get(weight.name) is not weight:
            raise IRError(f"weight @{weight.name} is not in this graph")
        problem = self._table.reader(weight, self)
        if problem:
            raise IRError(f"cannot remove weight @{weight.name}: {problem}")
        del self._table.weights[weight.name]
        weight._table = None

    def rename_weight(self, weight: Weight, name: str) -> None:
        """Give a weight a new name (the order of weights is kept)."""
        if name == weight.name:
            return
        table = self._table.weights
        if name in table:
            raise IRError(f"cannot rename @{weight.name} to @{name}: that weight exists")
        self._table.weights = {(name if k == weight.name else k): w for k, w in table.items()}
        weight.name = name

    def set_outputs(self, values: Sequence[Value]) -> None:
        """Set the graph's results."""
        self._outputs = list(values)

    def add_state_update(self, kind: str, target: str, value: Value) -> StateUpdate:
        """Declare that after a call ``value`` is the new content of ``target`` (a weight or input name)."""
        if kind == "input":
            if not any(v.name == target for v in self.inputs):
                raise IRError(f"state update of %{target}: the graph has no input called {target}")
        elif not self.has_weight(target):
            raise IRError(f"state update of @{target}: the graph has no weight called {target}")
        if self.is_state_target(target, kind):
            raise IRError(f"state {target!r} is updated twice")
        if not self.defines(value):
            raise IRError(f"state update of {target!r} writes {value.ref}, which is not defined in this graph")
        update = StateUpdate(kind, target, value)
        self._state_updates.append(update)
        return update

    def set_state_updates(self, updates: Sequence[StateUpdate]) -> None:
        """Replace the state updates (each is checked as by ``add_state_update``)."""
        old = self._state_updates
        self._state_updates = []
        try:
            for u in updates:
                self.add_state_update(u.kind, u.target, u.value)
        except IRError:
            self._state_updates = old
            raise

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
        """Move a node of this graph to just before ``anchor`` (another node of this graph)."""
        for what, n in (("node", node), ("anchor", anchor)):
            if n.graph is not self:
                raise IRError(f"cannot move {node.name} before {anchor.name}: the {what} {n.name} is not in this graph")
        if node is anchor:
            return
        self._unlink(node)
        node._erased = False
        prev = anchor._prev
        assert prev is not None
        node._prev, node._next = prev, anchor
        prev._next = node
        anchor._prev = node
        self._version += 1

    def move_after(self, anchor: Node, node: Node) -> None:
        """Move a node of this graph to just after ``anchor`` (another node of this graph)."""
        for what, n in (("node", node), ("anchor", anchor)):
            if n.graph is not self:
                raise IRError(f"cannot move {node.name} after {anchor.name}: the {what} {n.name} is not in this graph")
        if node is anchor or anchor._next is node:
            return
        assert anchor._next is not None
        nxt = anchor._next
        if nxt is self._root:
            self._unlink(node)
            node._erased = False
            prev = self._root._prev
            assert prev is not None
            node._prev, node._next = prev, self._root
            prev._next = node
            self._root._prev = node
            self._version += 1
        else:
            self.move_before(nxt, node)

    def _attach(self, node: Node) -> None:
        if node.graph is not None:
            raise IRError(f"node {node.name} already belongs to a graph")
        if not NAME_PATTERN.fullmatch(node.name):
            raise IRError(f"invalid node name {node.name!r}")
        if node.name in self._node_names:
            raise IRError(f"node name {node.name} is used twice")
        self._check_operands(node, node.args)
        for value in node.outputs:
            value.producer = node
            self._claim_value_name(value)
        node.graph = self
        node._erased = False
        self._node_names.add(node.name)
        self._add_uses(node)
        self._count += 1
        self._version += 1

    def _check_operands(self, node: Node, args: Sequence[Arg]) -> None:
        for value in iter_arg_values(args):
            if not self.defines(value):
                raise IRError(f"node {node.name} reads {value.ref}, which is not defined in this graph")
            if value.producer is node:
                raise IRError(f"node {node.name} cannot read its own result {value.ref}")

    def _add_uses(self, node: Node) -> None:
        weight_uses = self._weight_uses
        for slot, value in enumerate(iter_arg_values(node.args)):
            if isinstance(value, Weight):
                uses = weight_uses.get(value)
                if uses is None:
                    uses = weight_uses[value] = {}
                uses[Use(node, slot)] = None
            else:
                value._uses[Use(node, slot)] = None

    def _drop_uses(self, node: Node) -> None:
        weight_uses = self._weight_uses
        for slot, value in enumerate(iter_arg_values(node.args)):
            if isinstance(value, Weight):
                uses = weight_uses.get(value)
                if uses is not None:
                    uses.pop(Use(node, slot), None)
                    if not uses:
                        del weight_uses[value]
            else:
                value._uses.pop(Use(node, slot), None)

    def set_args(self, node: Node, args: Sequence[Arg]) -> None:
        """Replace a node's operands, keeping the use lists right.

        Atomic: every value is checked (defined in this graph, not a result of ``node``) before anything changes.
        """
        self._set_args_and_attrs(node, args, None)

    def _set_args_and_attrs(self, node: Node, args: Sequence[Arg], attrs: dict[str, Literal] | None) -> None:
        if node.graph is not self:
            raise IRError(f"cannot set the operands of {node.name}: it is not in this graph")
        args = list(args)
        self._check_operands(node, args)
        self._drop_uses(node)
        node.args = args
        if attrs is not None:
            node.attrs = dict(attrs)
        self._add_uses(node)
        self._version += 1

    def replace_all_uses_with(self, old: Value, new: Value) -> int:
        """Make every node (and graph output and state update) of this graph that reads ``old`` read ``new``;
        return how many changed.

        O(uses of ``old``), and atomic: ``new`` must be defined in this graph and not computed by a node
        that reads ``old`` (that would be a cycle); otherwise ``IRError`` and nothing changes. That ``new``
        comes before every reader in the order is the caller's to ensure (``verify()`` checks it; the
        rewriter inserts replacements before the matched node).
        """
        if old is new:
            return 0
        if not self.defines(old):
            raise IRError(f"cannot replace the uses of {old.ref}: it is not defined in this graph")
        if not self.defines(new):
            raise IRError(f"cannot replace {old.ref} by {new.ref}: {new.ref} is not defined in this graph")
        uses = list(self._local_uses(old))
        users = dict.fromkeys(use.node for use in uses)
        if new.producer is not None and new.producer in users:
            raise IRError(
                f"cannot replace {old.ref} by {new.ref}: {new.producer.name} computes {new.ref} from {old.ref}, "
                "so the graph would have a cycle"
            )
        for user in users:
            user.args = [_replace_in_arg(a, old, new) for a in user.args]
        # the operand slots stay where they were: move each use from old's list to new's
        old_uses = self._weight_uses.pop(old, {}) if isinstance(old, Weight) else old._uses
        if isinstance(new, Weight):
            new_uses = self._weight_uses.get(new)
            if new_uses is None:
                new_uses = self._weight_uses[new] = {}
        else:
            new_uses = new._uses
        new_uses.update(dict.fromkeys(uses))
        if not isinstance(old, Weight):
            old_uses.clear()
        replaced = len(users)
        for i, out in enumerate(self._outputs):
            if out is old:
                self._outputs[i] = new
                replaced += 1
        for update in self._state_updates:
            if update.value is old:
                update.value = new
                replaced += 1
        if users:
            self._version += 1
        return replaced

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
        """Build and insert a node called like the op (``create_op("aten.mul.Tensor", a, b)``).

        Operands are given positionally or by schema name; literals become attributes and absent ones take
        their schema defaults. Result types are inferred through the op registry (``torch_ir.ops``: the
        op's meta/fake kernel, or the shape function of a custom op), unless ``output_types`` is given.
        """
        where = f"create_op({op_type})"
        by_name = _operands.bind_operands(op_type, args, operands)
        node_args, attrs = _operands.split_operands(op_type, by_name, where)
        for value in iter_arg_values(node_args):
            if not self.defines(value):
                raise IRError(f"{where}: operand {value.ref} is not defined in this graph")
        if output_types is None:
            from torch_ir.ir.operands import infer_result_types

            output_types = infer_result_types(self, op_type, node_args, attrs)
        return self.create_node(
            op_type, node_args, attrs, output_types, name=name, meta=meta, before=before, after=after
        )

    def clone(self, *, share_weights: bool | None = None) -> Graph:
        """A deep copy of the graph (nodes, values, regions, state updates), built iteratively: any size works.

        A function of a module (a graph whose weight table other graphs read too) keeps reading that table
        (``share_weights`` defaults to True for it); a graph with a table of its own gets a copy of the
        table and of its init graph. Attributes and weight data are copied; ``meta`` dicts one level deep.
        """
        if share_weights is None:
            share_weights = not (len(self._table.graphs) == 1 and self._table.graphs[0] is self)
        new = Graph(self._table if share_weights else None)
        vmap: dict[Value, Value] = {}
        for v in self.inputs:
            vmap[v] = new.add_input(v.name, v.type)
        for w in self._table.weights.values():
            if share_weights:
                vmap[w] = w
            else:
                vmap[w] = new.add_weight(w.name, w.type, w.kind, w.aliases, w.persistent, _copy_literal(w.data))
        for node in self.nodes:
            args = [_map_arg(a, vmap) for a in node.args]
            copy = Node(node.name, node.op_type, args, _copy_literal(node.attrs), dict(node.meta))
            copy.regions = [region.clone(share_weights=False) for region in node.regions]  # closed: nothing to map
            for v in node.outputs:
                out = Value(v.name, v.type, copy, v.index)
                copy.outputs.append(out)
                vmap[v] = out
            new.append(copy)
        new._outputs = [vmap[v] for v in self._outputs]
        new._state_updates = [StateUpdate(u.kind, u.target, vmap[u.value]) for u in self._state_updates]
        new._name_counters = dict(self._name_counters)
        new.input_structure = _copy_literal(self.input_structure)
        new.output_structure = _copy_literal(self.output_structure)
        new.symbols = dict(self.symbols)
        if not share_weights and self.init is not None:
            new.init = self.init.clone(share_weights=False)
        new.meta = _copy_literal(self.meta)
        return new

    def erase(self, node: Node) -> None:
        """Remove a node whose results nothing reads."""
        if node.graph is not self:
            raise IRError(f"cannot erase {node.name}: it is not in this graph")
        for value in node.outputs:
            if value._uses:
                users = ", ".join(dict.fromkeys(use.node.name for use in value._uses))
                raise IRError(f"cannot erase {node.name}: {value.ref} is still used by {users}")
            if self.is_live(value):
                raise IRError(f"cannot erase {node.name}: {value.ref} is a graph output or a state value")
        self._drop_uses(node)
        for value in node.outputs:
            del self._values[value.name]
            value._graph = None
        self._node_names.discard(node.name)
        self._unlink(node)
        node._erased = True
        node.graph = None
        self._count -= 1

    def _unlink(self, node: Node) -> None:
        """Take ``node`` out of the order; its own links stay, so a walk that stands on it can go on."""
        prev, nxt = node._prev, node._next
        assert prev is not None and nxt is not None
        prev._next = nxt
        nxt._prev = prev
        node._erased = True
        self._version += 1

    def verify(self) -> None:
        """Check the graph's structure; raise ``VerificationError`` naming the first problem."""
        from torch_ir.ir.verify import verify_graph

        verify_graph(self)

    # ----------------------------------------------------------------- compare

    def signature(self) -> tuple:
        """A hashable description of everything the graph holds, used for equality."""
        return (
            tuple((v.name, v.type) for v in self.inputs),
            tuple(
                (w.name, w.type, w.kind, w.aliases, w.persistent, repr(w.data)) for w in self._table.weights.values()
            ),
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
            tuple((u.kind, u.target, u.value.ref) for u in self._state_updates),
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


def _map_arg(arg: Arg, vmap: dict[Value, Value]) -> Arg:
    if isinstance(arg, Value):
        return vmap[arg]
    if isinstance(arg, list):
        return [vmap[a] if isinstance(a, Value) else _copy_literal(a) for a in arg]
    return _copy_literal(arg)


def _copy_literal(obj: Any) -> Any:
    """A copy of a JSON-like literal (lists and dicts copied, iteratively; anything else shared)."""
    if not isinstance(obj, (list, dict)):
        return obj
    root: Any = [] if isinstance(obj, list) else {}
    stack: list[tuple[Any, Any]] = [(obj, root)]
    while stack:
        src, dst = stack.pop()
        items = enumerate(src) if isinstance(src, list) else src.items()
        for key, item in items:
            if isinstance(item, (list, dict)):
                child: Any = [] if isinstance(item, list) else {}
                stack.append((item, child))
            else:
                child = item
            if isinstance(dst, list):
                dst.append(child)
            else:
                dst[key] = child
    return root


def _arg_key(arg: Any) -> Any:
    if isinstance(arg, Value):
        return arg.ref
    if isinstance(arg, list):
        return [_arg_key(a) for a in arg]
    return arg
