"""A causal LM that derives its positions from the cache's length, as OPT's learned positions do: without
``position_ids`` it numbers the tokens with a cumulative sum over an all-ones mask of ``past + seq``
positions and keeps the last ``seq`` (``positions[:, past:]``).

Over a static cache, ``past`` is a number read from the cache's data, so that slice's length is one torch
cannot relate to ``seq``; an LLM program has to give the model its positions (``position_ids``) instead.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from tests.models.hybrid_lm import CachedAttention, TinyHybridConfig


class TinyPositionsConfig(TinyHybridConfig):
    """The hybrid LM's sizes, every layer attending."""

    model_type = "tiny_learned_positions"

    def __post_init__(self, **kwargs: Any) -> None:
        if self.layer_types is None:
            self.layer_types = ["full_attention", "full_attention"]
        super().__post_init__(**kwargs)


class TinyLearnedPositionsLM(PreTrainedModel, GenerationMixin):
    """Token and learned position embeddings, pre-norm attention blocks over the cache, the LM head."""

    config_class = TinyPositionsConfig
    base_model_prefix = "model"

    def __init__(self, config: TinyPositionsConfig) -> None:
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.norms = nn.ModuleList(nn.LayerNorm(config.hidden_size) for _ in config.layer_types)
        self.mixers = nn.ModuleList(CachedAttention(config, i) for i in range(len(config.layer_types)))
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        cache: Any = None,
        use_cache: bool | None = None,
        position_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        batch, seq = input_ids.shape
        past = cache.get_seq_length() if cache is not None else 0
        if position_ids is None:  # OPT's way: number every position of the mask, keep the new tokens'
            mask = torch.ones(batch, past + seq, dtype=torch.long, device=input_ids.device)
            position_ids = (torch.cumsum(mask, dim=1) * mask - 1)[:, past:]
        h = self.embed(input_ids) + self.positions(position_ids)
        for norm, mixer in zip(self.norms, self.mixers):
            h = h + mixer(norm(h), cache, past)
        return CausalLMOutputWithPast(logits=self.lm_head(h), past_key_values=cache)


def build_positions_lm(device: str = "meta", seed: int = 0) -> TinyLearnedPositionsLM:
    """The tiny LM on ``device`` (random weights off meta), in eval mode."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = TinyLearnedPositionsLM(TinyPositionsConfig())
    return model.eval()
