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


def crafted_module(
    *,
    weights: list[dict[str, Any]] | None = None,
    state: list[dict[str, Any]] | None = None,
    nodes: list[dict[str, Any]] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[str] | None = None,
) -> dict[str, Any]:
    """A current-version IR document: a module with these weights and declared state, and one public function
    ``forward`` of these nodes (by default it returns its one input ``x``, f32[2])."""
    inputs = inputs if inputs is not None else [{"name": "x", "type": {"shape": [2], "dtype": "float32"}}]
    graph = {"inputs": inputs, "nodes": nodes or [], "outputs": outputs if outputs is not None else ["%x"]}
    return {
        "format": "torch-ir",
        "schema_version": 6,
        "module": {"weights": weights or [], "state": state or [], "functions": [{"name": "forward", "graph": graph}]},
    }
