"""``IR``: what users hold after extraction: the graph (or the entry graphs of a program), its init graph,
the declared state, and how it was made."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch_ir.errors import IRError
from torch_ir.ir.graph import Graph, Node, Value, Weight
from torch_ir.ir.types import TensorType
from torch_ir.profiling import StageReport

DEFAULT_ENTRY = "forward"
"""The name of the one entry of an IR extracted from one ``forward`` call."""

STATE_INITS = ("zeros",)
"""How a declared state tensor starts before the first call of a program."""


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


class IR:
    """An extracted model: ``nodes`` (topological), ``weights`` (by name), ``inputs``, ``outputs``.

    ``graph`` is the mutable ``Graph`` passes work on; ``stages`` the time and memory each stage of
    extraction took; ``pass_log`` what each pass of the pipeline did.

    A program (``IR.program``) holds several named entry graphs (an LLM's ``prefill`` and ``decode``) over
    one set of weights and a declared ``state``; ``entries`` maps names to graphs (a single-graph IR has one
    entry, ``forward``). ``nodes``, ``weights``, ``inputs``, ``outputs`` and ``init`` read the one graph of
    a single-entry IR; on a program they name the entries to pick from.
    """

    def __init__(self, graph: Graph, stages: StageReport | None = None):
        self.entries: dict[str, Graph] = {DEFAULT_ENTRY: graph}
        self.state: dict[str, StateSpec] = {}
        self.stages = stages or StageReport()
        self.pass_log: list[dict[str, Any]] = []

    @classmethod
    def program(
        cls,
        entries: Mapping[str, Graph],
        state: Mapping[str, StateSpec] | None = None,
        stages: StageReport | None = None,
    ) -> IR:
        """An IR of several named entry graphs sharing weights and declared state."""
        if not entries:
            raise IRError("a program needs at least one entry graph")
        for name in entries:
            if not isinstance(name, str) or not name.isidentifier():
                raise IRError(f"entry name {name!r} must be an identifier (prefill, decode, ...)")
        ir = cls(next(iter(entries.values())), stages)
        ir.entries = dict(entries)
        ir.state = dict(state or {})
        return ir

    @property
    def graph(self) -> Graph:
        """The graph of a single-entry IR (of a program: its first entry)."""
        return next(iter(self.entries.values()))

    @graph.setter
    def graph(self, graph: Graph) -> None:
        first = next(iter(self.entries))
        self.entries[first] = graph

    @property
    def is_program(self) -> bool:
        """Whether this IR has several entries or declared state."""
        return len(self.entries) > 1 or bool(self.state)

    def entry(self, name: str) -> Graph:
        """The entry graph called ``name``."""
        try:
            return self.entries[name]
        except KeyError:
            raise IRError(f"no entry {name!r} in this IR; its entries: {', '.join(self.entries)}") from None

    def _single(self, what: str) -> Graph:
        if len(self.entries) > 1:
            raise IRError(
                f"this IR is a program with entries {', '.join(self.entries)}: read ir.entries[name].{what} "
                "(or ir.entry(name))"
            )
        return self.graph

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The operations in topological order (graph inputs and weights are not nodes)."""
        return self._single("nodes").nodes

    @property
    def weights(self) -> dict[str, Weight]:
        """The weights the graph reads, by name."""
        return self._single("weights").weights

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
        """The init graph (weight-only computations hoisted out of the main graph), if any."""
        return self._single("init").init

    @property
    def name(self) -> str:
        """The model's name (its class name, unless given)."""
        return str(self.graph.meta.get("model", "model"))

    def verify(self) -> None:
        """Run the structural verifier on every entry (and, for a program, check that the entries agree on
        weights and state); raise ``VerificationError`` on the first problem."""
        from torch_ir.ir.verify import verify_program

        verify_program(self)

    def save(self, path: str | os.PathLike[str], *, run_record: bool = False) -> None:
        """Write the IR as versioned JSON, atomically, with its pass log: the same model, options and
        versions always give the same bytes. ``run_record=True`` adds the time and memory of each stage
        and pass (which differ from run to run).
        """
        from torch_ir.backends.json import save_ir

        save_ir(self, path, run_record=run_record)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IR:
        """Read an IR written by ``save`` (no torch needed, no code executed)."""
        from torch_ir.backends.json import load_ir

        return load_ir(path)

    def to_text(self, *, metadata: bool = False) -> str:
        """The text form of the graph (of a program: its state, then each entry); ``metadata`` adds what
        reading it back into an equal IR needs (``torch_ir.ir.text``)."""
        from torch_ir.ir.text import print_graph, print_program

        if not self.is_program:
            return print_graph(self.graph, metadata=metadata)
        return print_program(self, metadata=metadata)

    def summary(self) -> str:
        """A few lines: node, weight and parameter figures, and per-stage times."""
        from torch_ir.analysis.summary import summarize

        return summarize(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IR):
            return NotImplemented
        return list(self.entries.items()) == list(other.entries.items()) and self.state == other.state

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if len(self.entries) > 1:
            sizes = ", ".join(f"{name} {len(g)} nodes" for name, g in self.entries.items())
            return f"<IR {self.name}: program ({sizes}), {len(self.state)} state tensors>"
        return f"<IR {self.name}: {len(self.graph)} nodes, {len(self.graph.weights)} weights>"
