"""IR documents written by hand or drawn by hypothesis, as an attacker or a fuzzer would write a file."""

from __future__ import annotations

from typing import Any


def crafted_document(
    nodes: list[dict[str, Any]], inputs: list[dict[str, Any]], outputs: list[str], model: str = "crafted"
) -> dict[str, Any]:
    """A version-1 IR document of one graph with these nodes, inputs and outputs, and nothing else."""
    return {
        "format": "torch-ir",
        "schema_version": 1,
        "model": model,
        "graph": {
            "inputs": inputs,
            "weights": [],
            "nodes": nodes,
            "outputs": outputs,
            "input_structure": None,
            "output_structure": None,
            "symbols": {},
            "meta": {},
            "init": None,
        },
    }
