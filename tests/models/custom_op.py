"""A custom operator from torch.library, with a fake (meta) kernel and a CPU kernel."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import ModelCase, register


@torch.library.custom_op("torch_ir_tests::scaled_gelu", mutates_args=())
def scaled_gelu(x: torch.Tensor, scale: float) -> torch.Tensor:
    """gelu(x) * scale, as an opaque custom op."""
    return torch.nn.functional.gelu(x) * scale


@scaled_gelu.register_fake
def _scaled_gelu_fake(x: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.empty_like(x)


class CustomOpModel(nn.Module):
    """linear -> custom scaled_gelu -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(10, 20)
        self.b = nn.Linear(20, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.ops.torch_ir_tests.scaled_gelu(self.a(x), 0.5))


register(
    ModelCase(
        name="custom_op",
        category="custom_op",
        build=CustomOpModel,
        inputs=lambda device: ((torch.randn(3, 10, device=device),), {}),
        description="a torch.library custom op (torch_ir_tests::scaled_gelu)",
        tags=("custom_op",),
        allow_ops=("torch_ir_tests::scaled_gelu",),
    )
)
