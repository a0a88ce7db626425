"""The Model Explorer adapter extension: Model Explorer opens torch-ir IR files itself.

Model Explorer's extension loader imports ``<module>.main`` for every module given to ``--extensions``::

    model-explorer --extensions=torch_ir.backends.model_explorer ir.json

``TorchIRAdapter.convert`` loads the IR (pure data, nothing executed) and returns Model Explorer's own
``graph_builder`` objects, built from ``convert.ir_to_graphs``. Needs the ``[viz]`` extra.
"""

from __future__ import annotations

from typing import Any

from model_explorer import Adapter, AdapterMetadata, ModelExplorerGraphs, graph_builder

from torch_ir.backends.model_explorer import ADAPTER_ID, schema
from torch_ir.backends.model_explorer.convert import ir_to_graphs
from torch_ir.ir.run_record import paused_gc
from torch_ir.serde import load


class TorchIRAdapter(Adapter):
    """Converts a torch-ir IR file (JSON written by ``torch-ir extract`` or ``IR.save``) to Model Explorer graphs."""

    metadata = AdapterMetadata(
        id=ADAPTER_ID,
        name="torch-ir adapter",
        description="torch-ir IR files: entries, regions, weights and state, in layers that follow module paths",
        source_repo="",
        fileExts=["json"],
    )

    def __init__(self) -> None:
        super().__init__()

    def convert(self, model_path: str, settings: dict[str, Any]) -> ModelExplorerGraphs:
        """Load the IR at ``model_path`` and return every graph of it (entries, regions, init graphs)."""
        collection = ir_to_graphs(load(model_path))
        with paused_gc():
            return {"graphs": to_model_explorer(collection)}


def to_model_explorer(collection: schema.GraphCollection) -> list[graph_builder.Graph]:
    """The graphs of ``collection`` as Model Explorer's ``graph_builder.Graph`` objects."""
    return [
        graph_builder.Graph(
            id=graph.id,
            nodes=[_node(node) for node in graph.nodes],
            groupNodeAttributes=graph.groupNodeAttributes,
        )
        for graph in collection.graphs
    ]


def _node(node: schema.GraphNode) -> graph_builder.GraphNode:
    return graph_builder.GraphNode(
        id=node.id,
        label=node.label,
        namespace=node.namespace,
        subgraphIds=list(node.subgraphIds),
        attrs=[graph_builder.KeyValue(key=a.key, value=a.value) for a in node.attrs],
        incomingEdges=[
            graph_builder.IncomingEdge(
                sourceNodeId=e.sourceNodeId,
                sourceNodeOutputId=e.sourceNodeOutputId,
                targetNodeInputId=e.targetNodeInputId,
            )
            for e in node.incomingEdges
        ],
        outputsMetadata=[_metadata(m) for m in node.outputsMetadata],
        inputsMetadata=[_metadata(m) for m in node.inputsMetadata],
    )


def _metadata(item: schema.MetadataItem) -> graph_builder.MetadataItem:
    return graph_builder.MetadataItem(
        id=item.id, attrs=[graph_builder.KeyValue(key=a.key, value=a.value) for a in item.attrs]
    )


__all__ = ["TorchIRAdapter", "to_model_explorer"]
