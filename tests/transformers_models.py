"""Tiny transformers models built from configs (no hub access), shared by the tests."""

from __future__ import annotations

import os
from typing import Any

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

_DECODER: dict[str, Any] = dict(
    num_hidden_layers=2,
    hidden_size=32,
    intermediate_size=64,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=128,
    max_position_embeddings=64,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
"""The shape every tiny decoder config starts from (token ids inside the vocabulary)."""

TINY: dict[str, dict[str, Any]] = {
    "gpt2": dict(n_layer=2, n_embd=32, n_head=4, vocab_size=128, n_positions=64, bos_token_id=0, eos_token_id=1),
    "llama": dict(_DECODER),
    "mixtral": {**_DECODER, "num_local_experts": 4, "num_experts_per_tok": 2},
    "deepseek_v3": {
        **_DECODER,
        "first_k_dense_replace": 1,
        "moe_intermediate_size": 16,
        "num_key_value_heads": 4,
        "n_routed_experts": 4,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "n_group": 1,
        "topk_group": 1,
        "q_lora_rank": 16,
        "kv_lora_rank": 16,
        "qk_rope_head_dim": 8,
        "qk_nope_head_dim": 8,
        "v_head_dim": 8,
    },
    "qwen2_moe": {
        **_DECODER,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 32,
        "num_experts": 4,
        "num_experts_per_tok": 2,
    },
    "falcon": {
        k: v
        for k, v in _DECODER.items()
        if k not in ("intermediate_size", "num_key_value_heads", "max_position_embeddings")
    },
    "qwen2": dict(_DECODER),  # its config derives head_dim; the others default to more than 8
    **{model_type: {**_DECODER, "head_dim": 8} for model_type in ("qwen3", "mistral", "gemma")},
}
"""Tiny configs: the two classic decoders, two mixture-of-experts models (experts chosen by a CPU-only
branch in transformers, so they test tracing as the CPU), Falcon (fused QKV, parallel attention), and
Qwen2/Qwen3/Mistral/Gemma decoders for LLM programs."""


def tiny_causal_lm(model_type: str, **overrides: Any) -> torch.nn.Module:
    """A transformers causal LM from the tiny config of ``model_type`` (on the current default device)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **{**TINY[model_type], **overrides}))


def build_causal_lm(model_type: str, device: str = "meta", seed: int = 0, **overrides: Any) -> torch.nn.Module:
    """A transformers causal LM from a tiny config, on ``device`` (random weights off meta), in eval mode."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = tiny_causal_lm(model_type, **overrides)
    return model.eval()


def causal_lm_inputs(device: str = "meta", batch: int = 1, seq: int = 8) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Token ids inside every tiny vocabulary, and ``use_cache=False``."""
    ids = torch.arange(batch * seq, dtype=torch.long).reshape(batch, seq) % 100 + 3
    return (ids.to(device),), {"use_cache": False}
