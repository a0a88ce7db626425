"""Where the nodes of an inlined graph came from: the call site and the callee's node behind each one.

A module with private functions runs its bodies through ``func.call`` nodes, so the values of a body are
never values of the caller, and eager PyTorch (which has no calls) names them differently at every call
site. To compare them node by node, the divergence search runs the graph with every call inlined
(``flat_interpreter``: the ``inline`` pass on a copy of the module, which gives each copied node the name
its block had, ``meta["inline"]``), and ``CallSite`` says, for each node of that flat graph that a call
put there, which call it stood in, which function, and which node of that function's body it copies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from torch_ir.ir.calls import callee_name, calls_in, is_call
from torch_ir.ir.graph import Graph

if TYPE_CHECKING:
    from torch_ir.ir.module import Module
    from torch_ir.runtime.interpreter import Interpreter


@dataclass(frozen=True)
class CallSite:
    """A node a call put into the flat graph: the call (a node of the caller), the function it called, and
    the node of that function's body the flat node copies (a call inside the body, for a nested call)."""

    call: str
    function: str
    node: str

    def to_dict(self) -> dict[str, Any]:
        """The site as the fields of a verify report entry: ``call``, ``function``, ``function_node``."""
        return {"call": self.call, "function": self.function, "function_node": self.node}


def flat_interpreter(interp: Interpreter) -> tuple[Any, dict[str, CallSite]] | None:
    """An interpreter of ``interp``'s graph with every call inlined, bound to the same weights, running where
    ``interp`` runs (a ``RemoteInterpreter``'s in a worker of its own), and the call site of each node the
    calls put there (by its name in the flat graph); None when the graph calls nothing.
    """
    module = interp.module
    graph = interp.graph
    if module is None or not any(True for _ in calls_in(graph)):
        return None
    entry = next((name for name, f in module.functions.items() if f.graph is graph), None)
    if entry is None:
        return None
    from torch_ir.passes.manager import PassManager
    from torch_ir.serde import from_dict, to_dict

    flat = from_dict(to_dict(module), "the module with its calls inlined")
    PassManager("inline").run(flat)
    flat_graph = flat.function(entry).graph
    runner = _flat_runner(interp, flat, flat_graph)
    functions = {name: f.graph for name, f in module.functions.items()}
    return runner, call_sites(graph, flat_graph, functions)


def _flat_runner(interp: Any, flat: Module, flat_graph: Graph) -> Any:
    """An interpreter of ``flat_graph`` under ``interp``'s policy (an IR read from a file keeps its allow-list),
    running where ``interp`` runs: in this process, or in a worker process of its own for the flat module."""
    from torch_ir.runtime.interpreter import Interpreter

    policy = replace(interp.policy, dry_run=False)
    if isinstance(interp, Interpreter):
        runner: Any = Interpreter(flat_graph, device=interp.device, module=flat, policy=policy)
    else:
        from torch_ir.runtime.worker import Executor

        executor = Executor(flat, True, interp.worker.settings, interp.device, policy.budget)
        runner = executor.interpreter(flat_graph, allow_side_effects=policy.allow_side_effects, dry_run=False)
    runner.set_weights(dict(interp.weights))
    return runner


def call_sites(graph: Graph, flat: Graph, functions: dict[str, Graph]) -> dict[str, CallSite]:
    """The call site of each node of ``flat`` (``graph`` with its top-level calls inlined, in place) that a
    call put there, by name. The inline pass puts a callee's nodes where its call stood, in order, so the
    nodes line up: each node of ``graph`` stands for one node of ``flat``, a call for as many as its callee
    has once flat. {} when they do not line up (the flat graph was changed otherwise)."""
    sizes: dict[str, int] = {}
    sites: list[CallSite | None] = []
    for node in graph.nodes:
        callee = functions.get(callee_name(node)) if is_call(node) else None
        if callee is None:
            sites.append(None)
            continue
        for inner in callee.nodes:
            count = _flat_size(inner, functions, sizes, set())
            sites.extend([CallSite(node.name, callee_name(node), inner.name)] * count)
    flat_nodes = list(flat.nodes)
    if len(flat_nodes) != len(sites):
        return {}
    return {node.name: site for node, site in zip(flat_nodes, sites) if site is not None}


def _flat_size(node: Any, functions: dict[str, Graph], sizes: dict[str, int], seen: set[str]) -> int:
    """How many nodes ``node`` becomes once inlined: 1, or for a call the flat size of its callee."""
    name = callee_name(node) if is_call(node) else ""
    if name not in functions or name in seen:
        return 1
    if name not in sizes:
        sizes[name] = sum(_flat_size(n, functions, sizes, seen | {name}) for n in functions[name].nodes)
    return sizes[name]


__all__ = ["CallSite", "call_sites", "flat_interpreter"]
