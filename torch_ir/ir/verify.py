"""The structural verifier: what every graph must satisfy before and after each pass."""

from __future__ import annotations

from torch_ir.errors import VerificationError
from torch_ir.ir.calls import CALL_OP, check_call, find_recursion
from torch_ir.ir.graph import Graph, Node, Use, Value, Weight
from torch_ir.ir.module import Module
from torch_ir.ir.regions import REGION_OPS, check_region_op, region_name


def verify_graph(graph: Graph, where: str = "graph", *, init: bool = True) -> None:
    """Raise ``VerificationError`` naming the first broken rule.

    Rules: names are unique; every value is defined once; every operand is defined before the node that
    reads it; outputs are defined; state updates write an input, buffer or parameter of the same type
    with a defined value; every value has a type; the use lists agree with the operands; derived weights
    are produced by the init graph, which is itself valid (checked here unless ``init`` is False: a module
    checks its one init graph once); region ops keep their op's contract and their regions are valid,
    closed graphs.
    """
    defined: set[int] = set()
    names: set[str] = set()

    def define(value: Value, what: str) -> None:
        if value.name in names and not isinstance(value, Weight):
            raise VerificationError(f"{where}: value %{value.name} is defined twice ({what})")
        if value.type is None:
            raise VerificationError(f"{where}: {value.ref} ({what}) has no type; run annotate-shapes")
        names.add(value.name)
        defined.add(id(value))

    for value in graph.inputs:
        define(value, "graph input")
    for weight in graph.weights.values():
        define(weight, "weight")

    node_names: set[str] = set()
    for node in graph.nodes:
        if node.name in node_names:
            raise VerificationError(f"{where}: node name {node.name} is used twice")
        node_names.add(node.name)
        if node.graph is not graph:
            raise VerificationError(f"{where}: node {node.name} does not belong to this graph")
        for slot, value in enumerate(node.inputs):
            if id(value) not in defined:
                raise VerificationError(
                    f"{where}: node {node.name} ({node.op_type}) reads {value.ref} in operand {slot}, "
                    "which is not defined before it"
                )
            if Use(node, slot) not in graph._local_uses(value):
                raise VerificationError(f"{where}: use list of {value.ref} misses node {node.name}")
        for index, value in enumerate(node.outputs):
            if value.producer is not node or value.index != index:
                raise VerificationError(f"{where}: result {index} of {node.name} does not point back to it")
            define(value, f"result {index} of {node.name}")
        for key, attr in node.attrs.items():
            if not isinstance(key, str) or not key:
                raise VerificationError(f"{where}: node {node.name} has an attribute with no name")
            items = attr if isinstance(attr, (list, tuple)) else [attr]
            held = next((a for a in items if isinstance(a, Value)), None)
            if held is not None:  # uses, liveness and the file formats see operands, not attributes
                raise VerificationError(
                    f"{where}: node {node.name} ({node.op_type}) holds {held.ref} in its attribute {key!r}: a value "
                    "is an operand (node.args, or node.set_operand), never an attribute"
                )
        if node.regions or node.op_type in REGION_OPS:
            verify_regions(node, where)

    for index, value in enumerate(graph.outputs):
        if id(value) not in defined:
            raise VerificationError(f"{where}: output {index} ({value.ref}) is not defined in the graph")
    inputs = {v.name: v for v in graph.inputs}
    for update in graph.state_updates:
        what = f"{where}: state update {update.target_ref} = {update.value.ref}"
        if id(update.value) not in defined:
            raise VerificationError(f"{what}: the value is not defined in the graph")
        if update.kind == "input":
            target: Value | None = inputs.get(update.target)
        else:
            target = graph.weight(update.target) if graph.has_weight(update.target) else None
        if target is None:
            raise VerificationError(f"{what}: no such {'input' if update.kind == 'input' else 'weight'}")
        if target.type != update.value.type:
            raise VerificationError(f"{what}: the new value is {update.value.type}, the state is {target.type}")
        if isinstance(target, Weight) and target.kind not in ("buffer", "parameter"):
            raise VerificationError(f"{what}: a {target.kind} weight cannot be updated")

    # Every operand is defined before its reader in node order, so the use graph is acyclic: no cycle search.
    if len(node_names) != len(graph):
        raise VerificationError(f"{where}: the node list holds {len(node_names)} nodes, the graph counts {len(graph)}")
    for weight, uses in graph._weight_uses.items():
        for use in uses:
            if use.node.graph is not graph or weight not in use.node.inputs:
                raise VerificationError(
                    f"{where}: use list of {weight.ref} holds {use.node.name}, which does not read it"
                )

    if not init:
        return
    derived = [w for w in graph.weights.values() if w.kind == "derived"]
    if graph.init is not None:
        verify_graph(graph.init, f"{where}.init")
        produced = {v.name for v in graph.init.outputs}
        for weight in derived:
            if weight.name not in produced:
                raise VerificationError(f"{where}: derived weight @{weight.name} is not produced by the init graph")
    elif derived:
        raise VerificationError(f"{where}: derived weight @{derived[0].name} but no init graph")


def verify_module(module: Module) -> None:
    """Verify a module: every function graph reads the module's one weight table; the init graph produces
    every derived weight; each function and region is valid; each declared state tensor is a buffer of that
    type that some function reads or writes, and functions write only declared state. Raise
    ``VerificationError`` naming the first problem."""
    table = module.table
    functions = module.functions
    if not functions:
        raise VerificationError("the module has no function")
    for name, function in functions.items():
        graph = function.graph
        where = f"function {name}" if len(functions) > 1 else "graph"
        if graph.table is not table or not any(g is graph for g in table.graphs):
            raise VerificationError(f"{where}: does not read the module's weight table")
        verify_graph(graph, where, init=False)
        for update in graph.state_updates:
            if update.kind == "buffer" and module.state and update.target not in module.state:
                raise VerificationError(
                    f"{where}: state update of @{update.target}, which is not declared state of the program"
                )
    graphs = {name: f.graph for name, f in functions.items()}
    for name, function in functions.items():
        where = f"function {name}" if len(functions) > 1 else "graph"
        for path, node in function.graph.walk():
            if node.op_type == CALL_OP:
                problem = check_call(node, graphs)
                if problem:
                    raise VerificationError(f"{where}: {path}node {node.name} ({CALL_OP}): {problem}")
    cycle = find_recursion(graphs)
    if cycle:
        raise VerificationError(f"the functions call each other in a cycle: {' -> '.join(cycle)}")
    for weight in table.weights.values():
        if weight._table is not table:
            raise VerificationError(f"weight @{weight.name} does not point back to the module's table")
    derived = [w for w in table.weights.values() if w.kind == "derived"]
    if table.init is not None:
        verify_graph(table.init, "init")
        produced = {v.name for v in table.init.outputs}
        for weight in derived:
            if weight.name not in produced:
                raise VerificationError(f"derived weight @{weight.name} is not produced by the init graph")
    elif derived:
        raise VerificationError(f"derived weight @{derived[0].name} but no init graph")
    for spec in module.state.values():
        weight = table.weights.get(spec.name)
        if weight is None or not any(
            f.graph.num_uses(weight) or f.graph.is_state_target(spec.name) for f in functions.values()
        ):
            raise VerificationError(f"declared state @{spec.name} is not read or written by any entry")
        if weight.type != spec.type or weight.kind != "buffer":
            raise VerificationError(
                f"declared state @{spec.name} is {spec.type}, but the weight table has it as "
                f"{weight.type} {weight.kind}"
            )


verify_program = verify_module
"""The name earlier releases gave ``verify_module``."""


def verify_regions(node: Node, where: str) -> None:
    """A region op keeps its contract (``torch_ir.ir.regions``); each region is closed and itself valid."""
    problem = check_region_op(node)
    if problem:
        raise VerificationError(f"{where}: node {node.name} ({node.op_type}): {problem}")
    for index, region in enumerate(node.regions):
        inner = f"{where}/{node.name}/{region_name(node.op_type, index)}"
        if region.weights or region.init is not None:
            raise VerificationError(
                f"{inner}: a region holds no weights or init graph; pass captured weights as operands of its op"
            )
        verify_graph(region, inner)
