"""The graph IR: types, values, nodes, graphs, the text form and the structural verifier."""

from torch_ir.ir.graph import Graph, Node, StateUpdate, Value, Weight
from torch_ir.ir.program import IR
from torch_ir.ir.text import parse_graph, print_graph
from torch_ir.ir.types import ScalarType, SymbolRange, TensorType

__all__ = [
    "IR",
    "Graph",
    "Node",
    "ScalarType",
    "StateUpdate",
    "SymbolRange",
    "TensorType",
    "Value",
    "Weight",
    "parse_graph",
    "print_graph",
]
