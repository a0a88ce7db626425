"""``Module`` (also called ``IR``): the unit users hold and passes run on.

A module owns one weight table (aliases included) and its init graph, the declared state, and named
functions. Public functions are entries (``forward``; an LLM's ``prefill`` and ``decode`` sharing the KV
cache); private ones are bodies that calls use. Every function's graph reads the module's one weight
table. A single-graph IR is a module with one public function, ``forward``: ``ir.nodes``, ``ir.inputs``,
``ir.outputs`` and ``ir.graph`` read it.

Saving, loading and summaries live in higher layers (``torch_ir.serde``, ``torch_ir.analysis``); they
register themselves here (``provide``), so ``ir.save(path)`` works without this package importing them.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch_ir.errors import IRError
from torch_ir.ir.graph import Graph, Node, StateUpdate, Value, Weight, WeightTable, iter_arg_values
from torch_ir.ir.run_record import StageReport
from torch_ir.ir.types import TensorType

DEFAULT_ENTRY = "forward"
"""The name of the one public function of an IR extracted from one ``forward`` call."""

STATE_INITS = ("zeros",)
"""How a declared state tensor starts before the first call of a program."""

_PROVIDERS: dict[str, Callable[..., Any]] = {}


def provide(name: str, function: Callable[..., Any]) -> None:
    """Register what ``Module.save`` / ``load`` / ``summary`` call (``"save"``, ``"load"``, ``"summary"``)."""
    _PROVIDERS[name] = function


def _provider(name: str) -> Callable[..., Any]:
    function = _PROVIDERS.get(name)
    if function is None:
        raise IRError(f"nothing provides {name!r} for modules: import torch_ir (the package) first")
    return function


@dataclass(frozen=True)
class StateSpec:
    """A tensor of state the entries of a program share (an LLM's KV cache): read and written by their state
    updates, carried from call to call, ``init`` before the first (``zeros``)."""

    name: str
    type: TensorType
    init: str = "zeros"

    def __post_init__(self) -> None:
        if self.init not in STATE_INITS:
            raise IRError(f"state @{self.name}: unknown init {self.init!r}; expected one of {STATE_INITS}")
        if not isinstance(self.type, TensorType) or not self.type.is_static:
            raise IRError(f"state @{self.name}: needs a tensor type with a static shape, got {self.type}")


class Function:
    """A named graph of a module: public (an entry that users call) or private (a body that calls use)."""

    __slots__ = ("graph", "name", "public")

    def __init__(self, name: str, graph: Graph, public: bool = True):
        self.name = name
        self.graph = graph
        self.public = public

    def __repr__(self) -> str:
        return f"<Function {'public' if self.public else 'private'} @{self.name}: {len(self.graph)} nodes>"


class Module:
    """An extracted model: named functions over one weight table, its init graph and declared state.

    ``Module(graph)`` is a single-graph IR (one public function ``forward``); ``Module.program(entries,
    state)`` one with several public entries. ``stages`` holds the time and memory each stage of
    extraction took; ``pass_log`` what each pass of the pipeline did.
    """

    def __init__(self, graph: Graph | None = None, stages: StageReport | None = None):
        self._table = WeightTable() if graph is None else graph.table
        self._table.owner = weakref.ref(self)
        self._functions: dict[str, Function] = {}
        self.state: dict[str, StateSpec] = {}
        self.stages = stages or StageReport()
        self.pass_log: list[dict[str, Any]] = []
        if graph is not None:
            self.add_function(DEFAULT_ENTRY, graph)

    @classmethod
    def program(
        cls,
        entries: Mapping[str, Graph],
        state: Mapping[str, StateSpec] | None = None,
        stages: StageReport | None = None,
    ) -> Module:
        """A module of several public entry graphs over one weight table, with declared state.

        The entries' weights are merged into one table: a weight two entries both name must be declared the
        same way in both (type, kind, aliases, persistence), else ``IRError``.
        """
        if not entries:
            raise IRError("a program needs at least one entry graph")
        module = cls(None, stages)
        for name, graph in entries.items():
            module.add_function(name, graph)
        module.state = dict(state or {})
        return module

    # --------------------------------------------------------------- functions

    @property
    def loaded_from(self) -> str | None:
        """The file this module was read from (``torch_ir.load_ir``); None for one built in this process."""
        return self._table.loaded_from

    @property
    def table(self) -> WeightTable:
        """The module's one weight table (and its init graph)."""
        return self._table

    @property
    def functions(self) -> dict[str, Function]:
        """Every function by name, public and private, in order (a copy)."""
        return dict(self._functions)

    def function(self, name: str) -> Function:
        """The function called ``name``."""
        try:
            return self._functions[name]
        except KeyError:
            raise IRError(f"no function {name!r} in this module; its functions: {', '.join(self._functions)}") from None

    def add_function(self, name: str, graph: Graph, public: bool = True) -> Function:
        """Add a function; its graph's weights join the module's table (see ``program``)."""
        if not isinstance(name, str) or not name.isidentifier():
            raise IRError(f"function name {name!r} must be an identifier (forward, prefill, decode, ...)")
        if name in self._functions:
            raise IRError(f"function {name!r} is defined twice")
        self._adopt(graph)
        function = Function(name, graph, public)
        self._functions[name] = function
        return function

    def set_graph(self, name: str, graph: Graph) -> None:
        """Make ``graph`` the body of function ``name`` (what a functional pass returned)."""
        function = self.function(name)
        old = function.graph
        if graph is old:
            return
        if graph.table is not self._table and len(self._functions) == 1:
            self._table = graph.table  # the one function brought a table of its own: it is the module's now
        else:
            self._adopt(graph)
        self._table.detach(old)
        function.graph = graph

    def remove_function(self, name: str) -> None:
        """Remove a function (a private body no call uses any more)."""
        function = self.function(name)
        self._table.detach(function.graph)
        del self._functions[name]

    def _adopt(self, graph: Graph) -> None:
        """Make ``graph`` read the module's weight table, merging the weights and init graph it brings."""
        table = self._table
        if graph.table is table:
            table.attach(graph)
            return
        other = graph.table
        renames = _derived_renames(table, other)
        for old, new in renames.items():
            graph.rename_weight(graph.weight(old), new)
            if other.init is not None:
                _rename_init_output(other.init, old, new)
        for weight in list(other.weights.values()):
            mine = table.weights.get(weight.name)
            if mine is None:
                del other.weights[weight.name]
                table.add(weight)
                continue
            if mine.declaration() != weight.declaration():
                raise IRError(
                    f"weight @{weight.name} is {weight.type} {weight.kind} in one function and {mine.type} "
                    f"{mine.kind} in another: the functions of a module share one weight table"
                )
            if mine.data is None and weight.data is not None:
                mine.data = weight.data
            _rebind_weight(graph, weight, mine)
        if other.init is not None:
            table.init = merge_init(table.init, other.init)
        other.detach(graph)
        graph._table = table
        table.attach(graph)

    # ------------------------------------------------------------- public view

    @property
    def entries(self) -> dict[str, Graph]:
        """The public functions' graphs by name (a copy; replace one with ``set_graph``)."""
        return {name: f.graph for name, f in self._functions.items() if f.public}

    def entry(self, name: str) -> Graph:
        """The graph of the public function called ``name``."""
        function = self._functions.get(name)
        if function is None or not function.public:
            raise IRError(f"no entry {name!r} in this IR; its entries: {', '.join(self.entries)}")
        return function.graph

    @property
    def graph(self) -> Graph:
        """The graph of a single-entry IR (of a program: its first entry)."""
        return next(iter(self.entries.values()))

    @graph.setter
    def graph(self, graph: Graph) -> None:
        self.set_graph(next(iter(self.entries)), graph)

    @property
    def is_program(self) -> bool:
        """Whether this IR has several entries or declared state."""
        return len(self.entries) > 1 or bool(self.state)

    def graphs(self) -> list[tuple[str, Graph]]:
        """Every top-level graph: ``(function name, graph)`` for each function, then ``("init", init)``."""
        out = [(name, f.graph) for name, f in self._functions.items()]
        if self._table.init is not None:
            out.append(("init", self._table.init))
        return out

    def _single(self, what: str) -> Graph:
        entries = self.entries
        if len(entries) > 1:
            raise IRError(
                f"this IR is a program with entries {', '.join(entries)}: read ir.entries[name].{what} "
                "(or ir.entry(name))"
            )
        return next(iter(entries.values()))

    @property
    def nodes(self) -> Any:
        """The operations in topological order (graph inputs and weights are not nodes)."""
        return self._single("nodes").nodes

    @property
    def weights(self) -> dict[str, Weight]:
        """The module's weights, by name (a copy of the table)."""
        return dict(self._table.weights)

    @property
    def inputs(self) -> list[Value]:
        """The graph inputs (flattened user inputs), in order."""
        return list(self._single("inputs").inputs)

    @property
    def outputs(self) -> list[Value]:
        """The graph results, in order."""
        return self._single("outputs").outputs

    @property
    def init(self) -> Graph | None:
        """The init graph (weight-only computations hoisted out of the functions), if any."""
        return self._table.init

    @init.setter
    def init(self, graph: Graph | None) -> None:
        self._table.init = graph

    @property
    def name(self) -> str:
        """The model's name (its class name, unless given)."""
        return str(self.graph.meta.get("model", "model"))

    def num_nodes(self) -> int:
        """The nodes of every function and region, nested ones included (not the init graph)."""
        return sum(1 for _, f in self._functions.items() for _ in f.graph.walk())

    # ------------------------------------------------------------------ others

    def verify(self) -> None:
        """Run the structural verifier on the module (the table, the init graph, every function, every region,
        the declared state); raise ``VerificationError`` on the first problem."""
        from torch_ir.ir.verify import verify_module

        verify_module(self)

    def save(self, path: str | os.PathLike[str], *, run_record: bool = False) -> None:
        """Write the IR as versioned JSON, atomically, with its pass log: the same model, options and versions
        always give the same bytes. ``run_record=True`` adds the time and memory of each stage and pass
        (which differ from run to run); see ``torch_ir.save``."""
        _provider("save")(self, path, run_record=run_record)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Module:
        """Read an IR written by ``save`` (``torch_ir.load_ir``: no torch needed, no code executed)."""
        return _provider("load")(path)

    def to_text(self, *, metadata: bool = False) -> str:
        """The text form: the graph of a single-graph IR, else the module with its table and functions;
        ``metadata`` adds what reading it back into an equal IR needs (``torch_ir.ir.text``)."""
        from torch_ir.ir.text import print_graph, print_module

        if not self.is_program and len(self._functions) == 1:
            return print_graph(self.graph, metadata=metadata)
        return print_module(self, metadata=metadata)

    def summary(self) -> str:
        """A few lines: node, weight and parameter figures, and per-stage times."""
        return str(_provider("summary")(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Module):
            return NotImplemented
        mine = [(n, f.public, f.graph.signature()) for n, f in self._functions.items()]
        theirs = [(n, f.public, f.graph.signature()) for n, f in other._functions.items()]
        return mine == theirs and self.state == other.state

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        private = [n for n, f in self._functions.items() if not f.public]
        extra = f", {len(private)} private functions" if private else ""
        if len(self.entries) > 1:
            sizes = ", ".join(f"{name} {len(g)} nodes" for name, g in self.entries.items())
            return f"<IR {self.name}: program ({sizes}), {len(self.state)} state tensors{extra}>"
        return f"<IR {self.name}: {len(self.graph)} nodes, {len(self._table.weights)} weights{extra}>"


IR = Module
"""The name users know the module by."""


def _rebind_weight(graph: Graph, old: Weight, new: Weight) -> None:
    """Make every node, output and state update of ``graph`` that reads ``old`` read ``new`` (same name)."""
    for node in graph.users(old):
        graph._drop_uses(node)
        node.args = [_swap(a, old, new) for a in node.args]
        graph._add_uses(node)
    graph._outputs = [new if v is old else v for v in graph._outputs]
    for update in graph._state_updates:
        if update.value is old:
            update.value = new


def _swap(arg: Any, old: Value, new: Value) -> Any:
    if arg is old:
        return new
    if isinstance(arg, list):
        return [new if a is old else a for a in arg]
    return arg


def _recipe(init: Graph, name: str) -> Any:
    """What the init graph computes for its output ``name``: nested ``(op, attrs, operands)``, weights by name."""
    memo: dict[int, Any] = {}

    def of(value: Value) -> Any:
        if isinstance(value, Weight) or value.producer is None:
            return ("@", value.name)
        key = id(value)
        if key not in memo:
            node = value.producer
            args = tuple(of(v) for v in iter_arg_values(node.args))
            memo[key] = (node.op_type, repr(node.attrs), args, value.index)
        return memo[key]

    value = next((v for v in init.outputs if v.name == name), None)
    return None if value is None else of(value)


def _derived_renames(table: WeightTable, other: WeightTable) -> dict[str, str]:
    """Derived weights of ``other`` whose name ``table`` already gives to another computation: new names."""
    renames: dict[str, str] = {}
    taken = set(table.weights) | set(other.weights)
    for name, weight in other.weights.items():
        mine = table.weights.get(name)
        if mine is None or weight.kind != "derived":
            continue
        if table.init is not None and other.init is not None and _recipe(table.init, name) == _recipe(other.init, name):
            continue
        counter = 1
        while f"{name}_{counter}" in taken:
            counter += 1
        renames[name] = f"{name}_{counter}"
        taken.add(renames[name])
    return renames


def _rename_init_output(init: Graph, old: str, new: str) -> None:
    value = init.value(old)
    del init._values[old]
    value.name = new
    init._values[new] = value


def merge_init(target: Graph | None, source: Graph) -> Graph:
    """The init graph that computes what ``target`` and ``source`` both compute (``target`` itself, grown).

    Nodes of ``source`` that ``target`` already computes (same op, operands and attributes) are reused,
    so an output both compute under one name is computed once.
    """
    if target is None:
        return source
    env: dict[int, Value] = {}
    for weight in source.weights.values():
        env[id(weight)] = (
            target.weight(weight.name)
            if target.has_weight(weight.name)
            else target.add_weight(
                weight.name, weight.type, weight.kind, weight.aliases, weight.persistent, weight.data
            )
        )
    for value in source.inputs:
        raise IRError(f"an init graph takes no inputs, found %{value.name}")
    known: dict[Any, Node] = {_node_key(node.op_type, node.attrs, node.args): node for node in target.nodes}
    for node in source.nodes:
        args = [_map(a, env) for a in node.args]
        key = _node_key(node.op_type, node.attrs, args)
        same = known.get(key)
        if same is not None and len(same.outputs) == len(node.outputs):
            for value, mine in zip(node.outputs, same.outputs):
                env[id(value)] = mine
            continue
        names = [v.name if not target.has_value(v.name) else target.fresh_name(v.name) for v in node.outputs]
        copy = target.create_node(
            node.op_type, args, dict(node.attrs), [v.type for v in node.outputs], output_names=names, meta=node.meta
        )
        known[key] = copy
        for value, mine in zip(node.outputs, copy.outputs):
            env[id(value)] = mine
    produced = {v.name for v in target.outputs}
    extra = []
    for value in source.outputs:
        if value.name in produced:
            continue
        mine = env[id(value)]
        if mine.name != value.name:  # an output is named after its derived weight
            if target.is_output(mine) or target.has_value(value.name):
                raise IRError(f"init graphs disagree on how derived weight @{value.name} is computed")
            _rename_init_output(target, mine.name, value.name)
        extra.append(mine)
    target.set_outputs([*target.outputs, *extra])
    return target


def _node_key(op_type: str, attrs: dict[str, Any], args: list[Any]) -> Any:
    return (op_type, repr(attrs), tuple(id(v) for v in iter_arg_values(args)))


def _map(arg: Any, env: dict[int, Value]) -> Any:
    if isinstance(arg, Value):
        return env[id(arg)]
    if isinstance(arg, list):
        return [env[id(a)] if isinstance(a, Value) else a for a in arg]
    return arg


__all__ = [
    "DEFAULT_ENTRY",
    "IR",
    "STATE_INITS",
    "Function",
    "Module",
    "StateSpec",
    "StateUpdate",
    "merge_init",
    "provide",
]
