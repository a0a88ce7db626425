"""Token embedding, layer norm and an MLP head."""

from __future__ import annotations

import torch
from torch import nn

from tests.models import ModelCase, register


class EmbeddingMLP(nn.Module):
    """Embedding + positional embedding, layer norm, a two-layer MLP, mean pooling."""

    def __init__(self, vocab: int = 100, dim: int = 24, max_len: int = 16) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(max_len, dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Dropout(0.1), nn.Linear(4 * dim, dim)
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = self.norm(self.tokens(ids) + self.positions(pos))
        return (h + self.mlp(h)).mean(dim=1)


register(
    ModelCase(
        name="embedding_mlp",
        category="embedding",
        build=EmbeddingMLP,
        inputs=lambda device: ((torch.randint(0, 100, (3, 9)).to(device),), {}),
        description="embedding + layernorm + MLP (with eval-mode dropout)",
    )
)
