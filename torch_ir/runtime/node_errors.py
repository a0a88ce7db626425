"""Per-node errors of a divergence search: how far each value it compared was from eager PyTorch.

The divergence search (``runtime/verifier.py``, ``runtime/region_divergence.py``) compares the IR's values
with eager PyTorch's by name until it finds the first that differs; every comparison it makes is kept as a
``NodeError``, so a report (and a Model Explorer overlay of it) shows the error at each node it reached,
and where the error starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch_ir.ir.graph import Node, Value


@dataclass(frozen=True)
class NodeError:
    """The largest absolute and relative error of one value of one node, and whether it was within tolerance.

    ``node`` is the node's name, prefixed by ``region`` (``scan/combine/``) for a node inside a region.
    """

    node: str
    op_type: str
    value: str
    region: str
    max_abs: float
    max_rel: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data (a verify report's ``node_errors`` entry)."""
        return {
            "node": self.node,
            "region": self.region,
            "op_type": self.op_type,
            "value": self.value,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "passed": self.passed,
        }


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
