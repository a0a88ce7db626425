"""The JSON that Model Explorer reads, as dataclasses: graphs (nodes, edges, namespaces) and node data.

The field names and meanings are Model Explorer's own (``model_explorer.graph_builder`` and
``model_explorer.node_data_builder`` of ``ai-edge-model-explorer``), written here again so that torch-ir
writes files Model Explorer loads without that package installed. ``to_dict`` leaves out empty optional
fields, as Model Explorer's own writer does with ``None``; the tests build Model Explorer's classes from
these dictionaries to check that both agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(slots=True)
class KeyValue:
    """One attribute of a node or of a node's input or output, shown in the side panel."""

    key: str
    value: str

    def to_dict(self) -> JSON:
        """``{"key": ..., "value": ...}``."""
        return {"key": self.key, "value": self.value}


@dataclass(slots=True)
class MetadataItem:
    """The attributes of one input or output (``id`` is its index as a string) of a node."""

    id: str
    attrs: list[KeyValue] = field(default_factory=list)

    def to_dict(self) -> JSON:
        """``{"id": ..., "attrs": [...]}``."""
        return {"id": self.id, "attrs": [a.to_dict() for a in self.attrs]}


@dataclass(slots=True)
class IncomingEdge:
    """An edge into a node: from output ``sourceNodeOutputId`` of ``sourceNodeId`` into input ``targetNodeInputId``."""

    sourceNodeId: str
    sourceNodeOutputId: str = "0"
    targetNodeInputId: str = "0"

    def to_dict(self) -> JSON:
        """The edge as Model Explorer's JSON."""
        return {
            "sourceNodeId": self.sourceNodeId,
            "sourceNodeOutputId": self.sourceNodeOutputId,
            "targetNodeInputId": self.targetNodeInputId,
        }


@dataclass(slots=True)
class GraphNode:
    """A node: ``namespace`` (``a/b/c``) puts it in nested, collapsible layers; ``subgraphIds`` link it to
    other graphs of the collection (a region op to its regions)."""

    id: str
    label: str
    namespace: str = ""
    subgraphIds: list[str] = field(default_factory=list)
    attrs: list[KeyValue] = field(default_factory=list)
    incomingEdges: list[IncomingEdge] = field(default_factory=list)
    outputsMetadata: list[MetadataItem] = field(default_factory=list)
    inputsMetadata: list[MetadataItem] = field(default_factory=list)

    def to_dict(self) -> JSON:
        """The node as Model Explorer's JSON (empty lists left out)."""
        out: JSON = {"id": self.id, "label": self.label, "namespace": self.namespace}
        if self.subgraphIds:
            out["subgraphIds"] = list(self.subgraphIds)
        out["attrs"] = [a.to_dict() for a in self.attrs]
        out["incomingEdges"] = [e.to_dict() for e in self.incomingEdges]
        if self.outputsMetadata:
            out["outputsMetadata"] = [m.to_dict() for m in self.outputsMetadata]
        if self.inputsMetadata:
            out["inputsMetadata"] = [m.to_dict() for m in self.inputsMetadata]
        return out


@dataclass(slots=True)
class Graph:
    """One graph: its nodes, and attributes of its layers by namespace (shown when a layer is selected)."""

    id: str
    nodes: list[GraphNode] = field(default_factory=list)
    groupNodeAttributes: dict[str, dict[str, str]] | None = None

    def to_dict(self) -> JSON:
        """The graph as Model Explorer's JSON."""
        out: JSON = {"id": self.id, "nodes": [n.to_dict() for n in self.nodes]}
        if self.groupNodeAttributes:
            out["groupNodeAttributes"] = {k: dict(v) for k, v in self.groupNodeAttributes.items()}
        return out


@dataclass(slots=True)
class GraphCollection:
    """The graphs of one model, under one label: what a ``graphs.json`` file holds."""

    label: str
    graphs: list[Graph] = field(default_factory=list)

    def to_dict(self) -> JSON:
        """``{"label": ..., "graphs": [...]}``, the collection form Model Explorer's JSON loader reads."""
        return {"label": self.label, "graphs": [g.to_dict() for g in self.graphs]}

    def graph(self, graph_id: str) -> Graph:
        """The graph called ``graph_id`` (KeyError when there is none)."""
        for graph in self.graphs:
            if graph.id == graph_id:
                return graph
        raise KeyError(graph_id)


@dataclass(slots=True)
class NodeDataResult:
    """The value of one node in a node-data overlay, and optionally the colour that marks it."""

    value: float
    bgColor: str | None = None
    textColor: str | None = None

    def to_dict(self) -> JSON:
        """``{"value": ..., "bgColor": ...}`` (colours only when set)."""
        out: JSON = {"value": self.value}
        if self.bgColor is not None:
            out["bgColor"] = self.bgColor
        if self.textColor is not None:
            out["textColor"] = self.textColor
        return out


@dataclass(slots=True)
class GradientItem:
    """A colour stop of a node-data overlay: 0 is the smallest value of the graph, 1 the largest."""

    stop: float
    bgColor: str

    def to_dict(self) -> JSON:
        """``{"stop": ..., "bgColor": ...}``."""
        return {"stop": self.stop, "bgColor": self.bgColor}


@dataclass(slots=True)
class GraphNodeData:
    """One overlay on one graph: a value per node id, coloured by ``gradient`` unless a result has its own colour."""

    name: str
    results: dict[str, NodeDataResult] = field(default_factory=dict)
    gradient: list[GradientItem] = field(default_factory=list)

    def to_dict(self) -> JSON:
        """The overlay as Model Explorer's JSON for one graph."""
        out: JSON = {"name": self.name, "results": {k: r.to_dict() for k, r in self.results.items()}}
        if self.gradient:
            out["gradient"] = [g.to_dict() for g in self.gradient]
        return out


ModelNodeData = dict[str, GraphNodeData]
"""One overlay over a whole collection: per graph id, that graph's node data (Model Explorer's ``ModelNodeData``)."""


def node_data_to_dict(data: ModelNodeData) -> JSON:
    """The JSON of a node-data file: ``{graph id: {"name", "results", ...}}``."""
    return {graph_id: graph_data.to_dict() for graph_id, graph_data in data.items()}


__all__ = [
    "JSON",
    "GradientItem",
    "Graph",
    "GraphCollection",
    "GraphNode",
    "GraphNodeData",
    "IncomingEdge",
    "KeyValue",
    "MetadataItem",
    "ModelNodeData",
    "NodeDataResult",
    "node_data_to_dict",
]
