"""The models the extraction benchmarks run on: built-in ones and transformers shapes, all on meta."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    """One benchmarked model: a model spec, config overrides, its layer count, and how many rounds."""

    name: str
    spec: str
    overrides: dict[str, Any] = field(default_factory=dict)
    layers: int | None = None
    rounds: int = 1
    needs_transformers: bool = False


LLAMA_7B = dict(hidden_size=4096, intermediate_size=11008, num_attention_heads=32, num_key_value_heads=32)
LLAMA_70B = dict(hidden_size=8192, intermediate_size=28672, num_attention_heads=64, num_key_value_heads=8)

CASES: dict[str, Case] = {
    c.name: c
    for c in [
        Case("zoo-gpt", "zoo:gpt", layers=4, rounds=2),
        Case("zoo-resnet", "zoo:resnet", rounds=2),
        Case("zoo-gpt-large", "zoo:gpt-large", layers=36),
        Case("llama-7b-8L", "hf:llama-2-7b", {"num_hidden_layers": 8}, 8, 1, True),
        Case("llama-7b-32L", "hf:llama-2-7b", {}, 32, 1, True),
        Case("llama-70b-8L", "hf:llama-2-70b", {"num_hidden_layers": 8}, 8, 1, True),
        Case("llama-70b-80L", "hf:llama-2-70b", {}, 80, 1, True),
        Case("llama-405b-126L", "hf:llama-3.1-405b", {}, 126, 1, True),
        Case("gpt2-xl", "hf:gpt2-xl", {}, 48, 1, True),
        Case("bert-large", "hf:bert-large", {}, 24, 1, True),
    ]
}
"""Llama 7B shape at 8 and 32 layers, 70B shape (GQA, 8 kv heads) at 8 and 80 layers."""
