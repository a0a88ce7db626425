"""Tiny transformers models (GPT-2 and Llama) as test cases, outside ``MODELS`` to keep ``pytest`` quick.

``python -m tests --transformers`` adds them to a run; ``--model llama_tiny`` picks one.
"""

from __future__ import annotations

import torch

from tests.models import ModelCase

_IDS = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)


def llama(layers: int = 2) -> torch.nn.Module:
    """A transformers ``LlamaForCausalLM`` with tiny dims and ``layers`` decoder layers."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, **_IDS,
    )
    return LlamaForCausalLM(config)


def gpt2(layers: int = 2) -> torch.nn.Module:
    """A transformers ``GPT2LMHeadModel`` with tiny dims (tied ``lm_head``)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=128, n_embd=32, n_layer=layers, n_head=4, n_positions=64, **_IDS)
    return GPT2LMHeadModel(config)


def _token_inputs(device: str) -> tuple[tuple, dict]:
    ids = torch.randint(3, 128, (1, 8)).to(device)
    return (ids,), {"use_cache": False}


TRANSFORMERS_MODELS: list[ModelCase] = [
    ModelCase("gpt2_tiny", "transformers", gpt2, _token_inputs, "transformers GPT-2, 2 layers, d=32",
              rtol=1e-4, atol=1e-4),
    ModelCase("llama_tiny", "transformers", llama, _token_inputs, "transformers Llama, 2 layers, d=32, GQA",
              rtol=1e-4, atol=1e-4),
    ModelCase("llama_32_layers", "transformers", lambda: llama(32), _token_inputs,
              "transformers Llama, 32 layers, d=32 (folding in diagrams)", rtol=1e-4, atol=1e-4),
]
