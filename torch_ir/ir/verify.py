"""The structural verifier: what every graph must satisfy before and after each pass."""

from __future__ import annotations

from torch_ir.errors import VerificationError
from torch_ir.ir.graph import Graph, Node, Value, Weight
from torch_ir.ir.program import IR
from torch_ir.ir.regions import REGION_OPS, check_region_op, region_name


def verify_graph(graph: Graph, where: str = "graph") -> None:
    """Raise ``VerificationError`` naming the first broken rule.

    Rules: names are unique; every value is defined once; every operand is defined before the node that
    reads it; outputs are defined; state updates write an input, buffer or parameter of the same type
    with a defined value; every value has a type; the use lists agree with the operands; the
    networkx mirror is acyclic; derived weights are produced by the init graph, which is itself valid;
    region ops keep their op's contract and their regions are valid, closed graphs.
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
            if node not in graph._uses.get(value, {}):
                raise VerificationError(f"{where}: use list of {value.ref} misses node {node.name}")
        for index, value in enumerate(node.outputs):
            if value.producer is not node or value.index != index:
                raise VerificationError(f"{where}: result {index} of {node.name} does not point back to it")
            define(value, f"result {index} of {node.name}")
        for key in node.attrs:
            if not isinstance(key, str) or not key:
                raise VerificationError(f"{where}: node {node.name} has an attribute with no name")
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

    # Every operand is defined before its reader in node order, so the use graph is acyclic: no networkx
    # cycle search (it cost more than a pass on a 2,000-node graph).
    if len(graph.nodes) != len(graph) or graph._nx.number_of_nodes() != len(graph):
        raise VerificationError(f"{where}: node list and networkx mirror disagree")

    derived = [w for w in graph.weights.values() if w.kind == "derived"]
    if graph.init is not None:
        verify_graph(graph.init, f"{where}.init")
        produced = {v.name for v in graph.init.outputs}
        for weight in derived:
            if weight.name not in produced:
                raise VerificationError(f"{where}: derived weight @{weight.name} is not produced by the init graph")
    elif derived:
        raise VerificationError(f"{where}: derived weight @{derived[0].name} but no init graph")


def verify_program(ir: IR) -> None:
    """Verify every entry graph; for a program, also that its entries agree on every weight they share
    (type, kind, aliases) and that each declared state tensor is a buffer of that type wherever it is read
    or written. Raise ``VerificationError`` naming the first problem."""
    if len(ir.entries) == 1 and not ir.state:
        verify_graph(ir.graph)
        return
    seen: dict[str, tuple[str, Weight]] = {}
    for name, graph in ir.entries.items():
        where = f"entry {name}"
        verify_graph(graph, where)
        for weight in graph.weights.values():
            if weight.kind == "derived":
                continue
            first = seen.setdefault(weight.name, (name, weight))
            other_entry, other = first
            if (other.type, other.kind, other.aliases, other.persistent) != (
                weight.type,
                weight.kind,
                weight.aliases,
                weight.persistent,
            ):
                raise VerificationError(
                    f"{where}: weight @{weight.name} is {weight.type} {weight.kind}, but in entry {other_entry} "
                    f"it is {other.type} {other.kind}: entries share one weight table"
                )
        for update in graph.state_updates:
            if update.kind == "buffer" and ir.state and update.target not in ir.state:
                raise VerificationError(
                    f"{where}: state update of @{update.target}, which is not declared state of the program"
                )
    for spec in ir.state.values():
        entry = seen.get(spec.name)
        if entry is None:
            raise VerificationError(f"declared state @{spec.name} is not read or written by any entry")
        if entry[1].type != spec.type or entry[1].kind != "buffer":
            raise VerificationError(
                f"declared state @{spec.name} is {spec.type}, but entry {entry[0]} has it as "
                f"{entry[1].type} {entry[1].kind}"
            )


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
