"""``IR``: what users hold after extraction: the graph, its init graph, and how it was made."""

from __future__ import annotations

import os
from typing import Any

from torch_ir.ir.graph import Graph, Node, Value, Weight
from torch_ir.profiling import StageReport


class IR:
    """An extracted model: ``nodes`` (topological), ``weights`` (by name), ``inputs``, ``outputs``.

    ``graph`` is the mutable ``Graph`` passes work on; ``stages`` the time and memory each stage of
    extraction took; ``pass_log`` what each pass of the pipeline did.
    """

    def __init__(self, graph: Graph, stages: StageReport | None = None):
        self.graph = graph
        self.stages = stages or StageReport()
        self.pass_log: list[dict[str, Any]] = []

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The operations in topological order (graph inputs and weights are not nodes)."""
        return self.graph.nodes

    @property
    def weights(self) -> dict[str, Weight]:
        """The weights the graph reads, by name."""
        return self.graph.weights

    @property
    def inputs(self) -> list[Value]:
        """The graph inputs (flattened user inputs), in order."""
        return list(self.graph.inputs)

    @property
    def outputs(self) -> list[Value]:
        """The graph results, in order."""
        return self.graph.outputs

    @property
    def init(self) -> Graph | None:
        """The init graph (weight-only computations hoisted out of the main graph), if any."""
        return self.graph.init

    @property
    def name(self) -> str:
        """The model's name (its class name, unless given)."""
        return str(self.graph.meta.get("model", "model"))

    def verify(self) -> None:
        """Run the structural verifier; raise ``VerificationError`` on the first problem."""
        self.graph.verify()

    def save(self, path: str | os.PathLike[str], *, timings: bool = True) -> None:
        """Write the IR as versioned JSON, atomically, with its stage figures and pass log.

        ``timings=False`` leaves out the times and memory figures, so the same model and pipeline always
        give the same bytes.
        """
        from torch_ir.backends.json import save_ir

        save_ir(self, path, timings=timings)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IR:
        """Read an IR written by ``save`` (no torch needed, no code executed)."""
        from torch_ir.backends.json import load_ir

        return load_ir(path)

    def to_text(self) -> str:
        """The text form of the graph."""
        return str(self.graph)

    def summary(self) -> str:
        """A few lines: node, weight and parameter figures, and per-stage times."""
        from torch_ir.analysis.summary import summarize

        return summarize(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IR):
            return NotImplemented
        return self.graph == other.graph

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<IR {self.name}: {len(self.graph)} nodes, {len(self.graph.weights)} weights>"
