"""The IR object model: types, values and uses, nodes, graphs, regions, the module; the text form and the
structural verifier. It imports only the standard library, ``torch_ir.errors`` and ``torch_ir.ops``."""

from torch_ir.ir.graph import Graph, Node, StateUpdate, Use, Value, Weight, WeightTable
from torch_ir.ir.module import IR, Function, Module, StateSpec
from torch_ir.ir.text import parse_graph, parse_module, print_graph, print_module
from torch_ir.ir.types import ScalarType, SymbolRange, TensorType

__all__ = [
    "IR",
    "Function",
    "Graph",
    "Module",
    "Node",
    "ScalarType",
    "StateSpec",
    "StateUpdate",
    "SymbolRange",
    "TensorType",
    "Use",
    "Value",
    "Weight",
    "WeightTable",
    "parse_graph",
    "parse_module",
    "print_graph",
    "print_module",
]
