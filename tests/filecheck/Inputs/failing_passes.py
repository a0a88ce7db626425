"""Passes that fail on purpose, for the tests of ``torch-ir opt``'s diagnostics (``-v``, ``--verify-diagnostics``).

Loaded with ``--plugin tests.filecheck.Inputs.failing_passes`` (lit puts the repository root on PYTHONPATH).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch_ir import Graph, Node, Pass, PassContext, PassResult, register_pass
from torch_ir.passes.rewrite import PatternRewritePass, PatternRewriter, RewritePattern


@register_pass
@dataclass(frozen=True)
class FailOnExp(Pass):
    """Look an exp node up in a table that does not hold it: a bug in a pass, raising KeyError."""

    name: ClassVar[str] = "test-fail-on-exp"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        table: dict[str, int] = {}
        for node in graph.nodes:
            if node.op_type == "aten.exp.default":
                table[node.name] += 1
        return PassResult(graph, False)


class DivideByZeroOnNeg(RewritePattern):
    """A pattern that divides by zero when it is offered a neg node."""

    op_types: ClassVar[tuple[str, ...]] = ("aten.neg.default",)

    def match_and_rewrite(self, node: Node, rewriter: PatternRewriter) -> None:
        1 / len(node.attrs)


@register_pass
@dataclass(frozen=True)
class BrokenPattern(PatternRewritePass):
    """A pattern pass whose pattern raises ZeroDivisionError."""

    name: ClassVar[str] = "test-broken-pattern"

    def patterns(self) -> list[RewritePattern]:
        return [DivideByZeroOnNeg()]
