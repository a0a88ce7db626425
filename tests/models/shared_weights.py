"""Weights shared two ways: one module called twice, and one Parameter under two names (tied)."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import ModelCase, register


class TiedEmbeddingLM(nn.Module):
    """A tiny LM whose output projection is the input embedding (one Parameter, two state_dict names)."""

    def __init__(self, vocab: int = 50, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.proj = nn.Linear(dim, dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids)
        h = torch.tanh(self.proj(h))
        h = torch.tanh(self.proj(h))  # the same module, called twice
        return self.lm_head(h)


register(
    ModelCase(
        name="tied_embedding_lm",
        category="shared_weights",
        build=TiedEmbeddingLM,
        inputs=lambda device: ((torch.randint(0, 50, (2, 7), device="cpu").to(device),), {}),
        description="tied input/output embedding, a module used twice",
        tags=("tied",),
    )
)
