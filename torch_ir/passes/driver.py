"""The pass driver: it walks a module for a pass, by the pass's scope, and owns the traversal.

As xDSL's ``PatternRewriteWalker`` and MLIR's pass manager do, the driver decides which graphs a pass sees
and in which order; passes transform what they are given. For a ``graph``-scope pass it visits, function
by function, the regions nested in the function (innermost first, each before the graph that owns it),
then the function's graph; after every function, the init graph. A ``function``-scope pass sees each
function's graph; a ``module``-scope pass the module. A functional pass's new graph is put where the old
one was (the function's body, the region of its op, the module's init graph).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from torch_ir.errors import PassError, TorchIRError
from torch_ir.ir.calls import body_names, follow_body
from torch_ir.ir.graph import Graph, Node
from torch_ir.ir.module import Module
from torch_ir.ir.regions import region_name
from torch_ir.passes.base import SCOPES, Pass, PassContext, PassResult, check_contract


@dataclass(frozen=True)
class Site:
    """One graph the driver hands a pass: which function it is in, its region path, and where it lives."""

    graph: Graph
    function: str
    region: str = ""
    owner: Node | None = None
    index: int = 0
    in_init: bool = False

    def install(self, module: Module, new: Graph) -> None:
        """Put a functional pass's result where ``graph`` was."""
        if self.in_init:
            module.init = new
        elif self.owner is not None:
            self.owner.regions[self.index] = new
        else:
            module.set_graph(self.function, new)


def sites(module: Module, scope: str) -> Iterator[Site]:
    """The graphs a pass of ``scope`` runs on, in the order the driver visits them (see the module doc).

    Regions are listed as the walk reaches them, so a region removed by an earlier visit is not visited.
    """
    if scope not in SCOPES:
        raise PassError(f"unknown pass scope {scope!r}; expected one of {', '.join(SCOPES)}")
    for name, function in module.functions.items():
        if scope == "graph":
            yield from nested_sites(function.graph, name, "")
        yield Site(function.graph, name)
    init = module.init
    if scope == "graph" and init is not None:
        yield from nested_sites(init, "", "", in_init=True)
        yield Site(init, "", in_init=True)


def nested_sites(graph: Graph, function: str, prefix: str, in_init: bool = False) -> Iterator[Site]:
    """The regions nested in ``graph``, innermost first (post-order)."""
    for node in graph.nodes[:]:  # a snapshot: visiting a region does not change the order of its parent
        if not node.regions:
            continue
        for index, region in enumerate(list(node.regions)):
            path = f"{prefix}{node.name}/{region_name(node.op_type, index)}/"
            yield from nested_sites(region, function, path, in_init)
            yield Site(region, function, path, node, index, in_init)


def run_pass(p: Pass, module: Module, ctx: PassContext) -> bool:
    """Run ``p`` on ``module`` by its scope, with its whole contract (``requires``, ``run``, the in-place
    check, ``ensures``) at each site; return whether anything changed."""
    if p.scope == "module":
        result = _checked(p, module, replace(ctx, module=module, function="", region="", in_init=False))
        if result.graph is not module:
            raise PassError(f"pass {p.name}: a module-scope pass changes the module it is given")
        return bool(result.modified)
    modified = False
    for site in sites(module, p.scope):
        if site.owner is not None and site.owner.graph is None:
            continue  # the op that owned this region was erased by an earlier visit
        local = replace(ctx, module=module, function=site.function, region=site.region, in_init=site.in_init)
        body = _private_body(module, site)
        before = body_names(site.graph) if body else None
        try:
            result = _checked(p, site.graph, local)
        except Exception as exc:
            if len(module.functions) == 1 and not site.region and not site.in_init:
                raise
            what = str(exc) if isinstance(exc, TorchIRError) else f"{type(exc).__name__}: {exc}"
            raise PassError(f"in {local.where}: {what}") from exc
        if result.graph is not site.graph:
            site.install(module, result.graph)
        if before is not None:  # the calls of a body keep the names of its nodes where they stand
            follow_body({n: f.graph for n, f in module.functions.items()}, site.function, before)
        modified = modified or bool(result.modified)
    return modified


def _private_body(module: Module, site: Site) -> bool:
    """Whether ``site`` is the own graph of a private function (whose calls keep names of its nodes)."""
    if site.owner is not None or site.in_init or not site.function:
        return False
    function = module.functions.get(site.function)
    return function is not None and not function.public


def _checked(p: Pass, target: Graph | Module, ctx: PassContext) -> PassResult:
    p.requires(target)
    result = p.run(target, ctx)
    if not isinstance(result, PassResult):
        raise PassError(f"run() returned {type(result).__name__}, not a PassResult")
    check_contract(p, target, result)
    p.ensures(result.graph)
    return result


__all__ = ["Site", "nested_sites", "run_pass", "sites"]
