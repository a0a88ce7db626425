"""Regions in the Mermaid flowchart: each region of a drawn control-flow op is a nested subgraph.

A region's subgraph (labelled ``<op node>: <region>``, e.g. ``cond: true``) holds its ops, and its own
region ops' subgraphs nested inside. The op that owns the region links to the region's ops that read
its inputs; the ops that compute the region's results link back to it. Regions with more than
``MAX_REGION_NODES`` ops are drawn as one box.
"""

from __future__ import annotations

from torch_ir.backends.mermaid import _Block, _Item, _lines, _op_label, _type_label, escape_label
from torch_ir.ir.graph import Graph, Node, Value
from torch_ir.ir.regions import region_name

MAX_REGION_NODES = 60
"""A region with more ops than this is drawn as one box."""


def region_blocks(
    graph: Graph, unit: dict[Node, str], kept: set[str], edges: dict[tuple[str, str], list[str]]
) -> list[_Block]:
    """The subgraphs of the regions of every drawn region op of ``graph``; their edges go into ``edges``."""
    blocks: list[_Block] = []
    counter = [0]
    for node in graph.nodes:
        uid = unit.get(node)
        if node.regions and uid in kept and uid is not None and uid.startswith("n"):
            blocks.extend(_regions_of(node, uid, edges, counter))
    return blocks


def _regions_of(node: Node, owner: str, edges: dict[tuple[str, str], list[str]], counter: list[int]) -> list[_Block]:
    blocks = []
    for index, region in enumerate(node.regions):
        counter[0] += 1
        prefix = f"r{counter[0]}"
        block = _Block(f"{prefix}s", escape_label(f"{node.name}: {region_name(node.op_type, index)}"))
        blocks.append(block)
        if len(region) > MAX_REGION_NODES:
            box = f"{prefix}m1"
            block.items.append(_Item(box, "module", _lines(f"{len(region)} ops")))
            edges.setdefault((owner, box), []).append("")
            continue
        source: dict[Value, str] = {}
        for k, inner in enumerate(region.nodes):
            nid = f"{prefix}n{k}"
            block.items.append(_Item(nid, "op", _op_label(inner)))
            for value in inner.inputs:
                src = source.get(value, owner)
                labels = edges.setdefault((src, nid), [])
                label = _type_label(value)
                if label not in labels:
                    labels.append(label)
            for value in inner.outputs:
                source[value] = nid
            if inner.regions:
                block.blocks.extend(_regions_of(inner, nid, edges, counter))
        for value in region.outputs:
            result = source.get(value)
            if result is not None:
                labels = edges.setdefault((result, owner), [])
                if _type_label(value) not in labels:
                    labels.append(_type_label(value))
    return blocks


__all__ = ["MAX_REGION_NODES", "region_blocks"]
