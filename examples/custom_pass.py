"""A custom pass: fuse ``aten.linear`` + an activation into one ``torch_ir_examples.linear_act`` op.

Use it from a pipeline file (``plugins = ["examples.custom_pass"]``), the CLI
(``torch-ir opt model.json --plugin examples.custom_pass -p fuse-linear-act,dce``) or an entry point in
the ``torch_ir.passes`` group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from torch_ir import Graph, Pass, PassContext, PassResult, register_pass

ACTIVATIONS = {"aten.relu.default": "relu", "aten.gelu.default": "gelu", "aten.silu.default": "silu"}


@torch.library.custom_op("torch_ir_examples::linear_act", mutates_args=())
def linear_act(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str) -> torch.Tensor:
    """``activation(linear(x, weight, bias))`` as one op."""
    return getattr(torch.nn.functional, activation)(torch.nn.functional.linear(x, weight, bias))


@linear_act.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


@register_pass
@dataclass(frozen=True)
class FuseLinearActivation(Pass):
    """Fuse aten.linear followed by relu/gelu/silu (its only user) into torch_ir_examples.linear_act."""

    name: ClassVar[str] = "fuse-linear-act"
    activations: tuple[str, ...] = ("relu", "gelu", "silu")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        modified = False
        for node in graph.nodes:
            act = ACTIVATIONS.get(node.op_type)
            src = node.args[0].producer if node.args else None
            if act not in self.activations or src is None or src.op_type != "aten.linear.default":
                continue
            if (
                graph.num_uses(src.output) != 1
                or graph.is_output(src.output)
                or node.attrs.get("approximate", "none") != "none"
            ):
                continue
            bias = src.args[2] if len(src.args) > 2 else None
            fused = graph.create_node(
                "torch_ir_examples.linear_act.default",
                [*src.args[:2], *([bias] if bias else [])],
                {**({} if bias else {"bias": None}), "activation": act},
                [node.output.type],
                name=f"{src.name}_{act}",
                before=node,
                meta=src.meta,
            )
            graph.replace_all_uses_with(node.output, fused.output)
            graph.erase(node)
            graph.erase(src)
            modified = True
        return PassResult(graph, modified)
