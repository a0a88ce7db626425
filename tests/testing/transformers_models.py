"""Tiny transformers models (GPT-2 and Llama) as test cases, outside ``MODELS`` to keep ``pytest`` quick.

``python -m tests --transformers`` adds them to a run; ``--model llama_tiny`` picks one.
"""

from __future__ import annotations

import torch

from tests.models import ModelCase
from tests.transformers_models import tiny_causal_lm


def llama(layers: int = 2) -> torch.nn.Module:
    """A transformers ``LlamaForCausalLM`` with tiny dims (GQA) and ``layers`` decoder layers."""
    return tiny_causal_lm("llama", num_hidden_layers=layers)


def gpt2(layers: int = 2) -> torch.nn.Module:
    """A transformers ``GPT2LMHeadModel`` with tiny dims (tied ``lm_head``)."""
    return tiny_causal_lm("gpt2", n_layer=layers)


def _token_inputs(device: str) -> tuple[tuple, dict]:
    ids = torch.randint(3, 128, (1, 8)).to(device)
    return (ids,), {"use_cache": False}


TRANSFORMERS_MODELS: list[ModelCase] = [
    ModelCase(
        "gpt2_tiny", "transformers", gpt2, _token_inputs, "transformers GPT-2, 2 layers, d=32", rtol=1e-4, atol=1e-4
    ),
    ModelCase(
        "llama_tiny",
        "transformers",
        llama,
        _token_inputs,
        "transformers Llama, 2 layers, d=32, GQA",
        rtol=1e-4,
        atol=1e-4,
    ),
    ModelCase(
        "llama_32_layers",
        "transformers",
        lambda: llama(32),
        _token_inputs,
        "transformers Llama, 32 layers, d=32 (folding in diagrams)",
        rtol=1e-4,
        atol=1e-4,
    ),
]
