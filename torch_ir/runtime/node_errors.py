"""Per-node errors of a divergence search: how far each value it compared was from eager PyTorch.

The divergence search (``runtime/verifier.py``, ``runtime/region_divergence.py``) compares the IR's values
with eager PyTorch's by name until it finds the first that differs; every comparison it makes is kept as a
``NodeError``, so a report (and a Model Explorer overlay of it) shows the error at each node it reached,
and where the error starts. A node a call put there (the search runs a module's calls inlined) names its
``site``: the call, the function, and the node of the function's body (``runtime/call_sites.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch_ir.ir.graph import Node, Value
from torch_ir.runtime.call_sites import CallSite


@dataclass(frozen=True)
class NodeError:
    """The largest absolute and relative error of one value of one node, and whether it was within tolerance.

    ``node`` is the node's name, prefixed by ``region`` (``scan/combine/``) for a node inside a region;
    ``site`` says which call put the node there, when one did.
    """

    node: str
    op_type: str
    value: str
    region: str
    max_abs: float
    max_rel: float
    passed: bool
    site: CallSite | None = None

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data (a verify report's ``node_errors`` entry; ``call``, ``function`` and
        ``function_node`` for a node a call put there)."""
        out = {
            "node": self.node,
            "region": self.region,
            "op_type": self.op_type,
            "value": self.value,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "passed": self.passed,
        }
        if self.site is not None:
            out.update(self.site.to_dict())
        return out


def record_node_error(
    errors: list[NodeError] | None, node: Node, value: Value, comparison: Any, region: str = ""
) -> None:
    """Append the ``comparison`` (a ``Comparison``) of ``node``'s result ``value`` to ``errors``, when given."""
    if errors is None:
        return
    errors.append(
        NodeError(
            region + node.name,
            node.op_type,
            region + value.name,
            region,
            float(comparison.max_abs),
            float(comparison.max_rel),
            bool(comparison.passed),
        )
    )


__all__ = ["NodeError", "record_node_error"]
