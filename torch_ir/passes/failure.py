"""Where a pass failed: the node it was working on, and the IR around that node.

``failing_node(error)`` reads the node from the error (the rewriter records the node a pattern was
offered) or, for any other pass, from the traceback: the innermost frame that holds a ``Node`` still in a
graph (a local called ``node`` first); for the verifier's errors, the node the message names.
``ir_around(node)`` prints that node's graph in the text form with a
few lines either side, the node's line marked; ``failure_context`` frames it for ``torch-ir opt -v``, which
prints it after the traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import TracebackType

from torch_ir.errors import VerificationError
from torch_ir.ir.graph import Graph, Node
from torch_ir.ir.module import Module
from torch_ir.ir.regions import region_name
from torch_ir.ir.text import format_node, print_graph

CONTEXT_LINES = 4
"""Lines of IR shown before and after the failing node."""


def failing_node(error: BaseException, module: Module | None = None) -> Node | None:
    """The node a failed pass was working on, or None when nothing names one.

    In order: a node the error carries (``PassError.node``); the innermost frame of the traceback holding a
    node still in a graph, read from the root cause of the error chain up; for a verifier's error (whose
    loop variables say nothing), the first node the message names, looked up in ``module``.
    """
    chain = list(_chain(error))
    for exc in chain:
        node = getattr(exc, "node", None)
        if isinstance(node, Node) and node.graph is not None:
            return node
    if any(isinstance(exc, VerificationError) for exc in chain):
        return _named_node(str(chain[-1]), module)
    for exc in reversed(chain):
        for frame_locals in _frames_innermost_first(exc.__traceback__):
            node = _node_in(frame_locals)
            if node is not None:
                return node
    return None


def _named_node(message: str, module: Module | None) -> Node | None:
    found = re.search(r"\bnode (\S+)", message)
    if found is None or module is None:
        return None
    name = found.group(1).rstrip(",:;")
    for _, graph in module.graphs():
        for _, node in graph.walk():
            if node.name == name:
                return node
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _frames_innermost_first(tb: TracebackType | None) -> list[dict[str, object]]:
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame.f_locals)
        tb = tb.tb_next
    return frames[::-1]


def _node_in(frame_locals: dict[str, object]) -> Node | None:
    preferred = frame_locals.get("node")
    if isinstance(preferred, Node) and preferred.graph is not None:
        return preferred
    for value in frame_locals.values():
        if isinstance(value, Node) and value.graph is not None:
            return value
    return None


def where(node: Node) -> str:
    """Where ``node`` is, in words: ``node %mul`` or ``node %add in region cond_1/true``."""
    path: list[str] = []
    graph: Graph | None = node.graph
    while graph is not None and graph.owner is not None:
        owner = graph.owner
        index = next((i for i, r in enumerate(owner.regions) if r is graph), 0)
        path.insert(0, f"{owner.name}/{region_name(owner.op_type, index)}")
        graph = owner.graph
    inside = f" in region {'/'.join(path)}" if path else ""
    return f"node {node.name} ({node.op_type}){inside}"


def ir_around(node: Node, context: int = CONTEXT_LINES) -> str:
    """The text form of ``node``'s graph, ``context`` lines either side of the node, its line marked ``>``."""
    graph = node.graph
    if graph is None:
        return f"(node {node.name} is no longer in a graph)"
    lines = print_graph(graph, weights=False).split("\n")
    own = format_node(node)
    at = next((i for i, line in enumerate(lines) if line.strip().startswith(own)), None)
    if at is None:
        return "\n".join("  " + line for line in lines)
    first, last = max(0, at - context), min(len(lines), at + context + 1)
    shown = [("> " if i == at else "  ") + lines[i] for i in range(first, last)]
    if first > 0:
        shown.insert(0, f"  ... ({first} lines above)")
    if last < len(lines):
        shown.append(f"  ... ({len(lines) - last} lines below)")
    return "\n".join(shown)


def failure_context(node: Node | None) -> str:
    """What ``-v`` shows after a failing pass's traceback: the IR around ``node``, framed."""
    if node is None:
        return "--- no node of the IR is named by the failure ---"
    return f"--- IR around {where(node)}, as the pass left it ---\n{ir_around(node)}\n--- end ---"


__all__ = ["CONTEXT_LINES", "failing_node", "failure_context", "ir_around", "where"]
