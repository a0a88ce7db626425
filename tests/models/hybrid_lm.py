"""A hybrid causal LM: linear-recurrent layers (a short causal convolution and a gated diagonal recurrence,
Mamba-style) between attention layers, over transformers' cache API.

Its cache has both kinds of layer transformers' ``StaticCache`` builds from ``layer_types``: attention
layers (keys and values) and linear-attention layers (a conv state and a recurrent state), so its LLM
program has to hold conv and recurrent states as state next to the KV cache. The recurrence is computed in
closed form over the prompt (no Python loop over tokens), so the prompt length stays symbolic.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast


class TinyHybridConfig(PreTrainedConfig):
    """Sizes of the tiny hybrid LM; ``layer_types`` says which layers are recurrent and which attend."""

    model_type = "tiny_hybrid"

    vocab_size: int = 64
    hidden_size: int = 16
    num_attention_heads: int = 2
    num_key_value_heads: int = 2
    head_dim: int = 8
    conv_kernel: int = 2
    layer_types: list[str] | None = None
    max_position_embeddings: int = 64
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    pad_token_id: int | None = 0

    def __post_init__(self, **kwargs: Any) -> None:
        if self.layer_types is None:
            self.layer_types = ["linear_attention", "full_attention", "linear_attention"]
        self.num_hidden_layers = len(self.layer_types)
        super().__post_init__(**kwargs)


class RecurrentMixer(nn.Module):
    """``h_t = a * h_{t-1} + u_t`` per channel after a causal depthwise convolution; output ``h * gate``."""

    def __init__(self, config: TinyHybridConfig, layer_idx: int) -> None:
        super().__init__()
        d = config.hidden_size
        self.layer_idx = layer_idx
        self.kernel = config.conv_kernel
        self.in_proj = nn.Linear(d, 2 * d)
        self.conv = nn.Conv1d(d, d, self.kernel, groups=d)
        self.decay_logit = nn.Parameter(torch.linspace(-1.0, 2.0, d))
        self.out_proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, cache: Any) -> torch.Tensor:
        u, gate = self.in_proj(x).chunk(2, dim=-1)
        seq = u.shape[1]
        conv_in = u.transpose(1, 2)
        if cache is not None:
            conv_in = cache.update_conv_state(conv_in, self.layer_idx, conv_kernel_size=self.kernel)
        u = self.conv(F.pad(conv_in, (self.kernel - 1, 0)))[..., -seq:].transpose(1, 2)
        a = torch.sigmoid(self.decay_logit)
        previous = cache.get_recurrent_state(self.layer_idx) if cache is not None else None
        steps = torch.arange(seq, device=x.device)
        distance = (steps[:, None] - steps[None, :]).clamp(min=0).to(x.dtype)
        weights = torch.exp(distance[..., None] * torch.log(a)) * (steps[:, None] >= steps[None, :])[..., None]
        h = torch.einsum("tjd,bjd->btd", weights, u)
        if previous is not None:
            h = h + torch.exp((steps + 1).to(x.dtype)[:, None] * torch.log(a)) * previous[:, None, :]
        if cache is not None:
            cache.update_recurrent_state(h[:, -1], self.layer_idx)
        return self.out_proj(h * F.silu(gate))


class CachedAttention(nn.Module):
    """Multi-head attention over the cache, causal by absolute position (no positional encoding)."""

    def __init__(self, config: TinyHybridConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.heads, self.head_dim = config.num_attention_heads, config.head_dim
        inner = self.heads * self.head_dim
        self.qkv = nn.Linear(config.hidden_size, 3 * inner)
        self.out = nn.Linear(inner, config.hidden_size)

    def forward(self, x: torch.Tensor, cache: Any, past: Any) -> torch.Tensor:
        b, s, _ = x.shape
        q, k, v = (t.view(b, s, self.heads, self.head_dim).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        query_pos = torch.arange(s, device=x.device) + past
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        key_pos = torch.arange(k.shape[2], device=x.device)
        mask = key_pos[None, :] <= query_pos[:, None]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, s, -1))


class TinyHybridForCausalLM(PreTrainedModel, GenerationMixin):
    """Embedding, then per layer a pre-norm residual block (recurrent or attention), then the LM head."""

    config_class = TinyHybridConfig
    base_model_prefix = "model"

    def __init__(self, config: TinyHybridConfig) -> None:
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.norms = nn.ModuleList(nn.LayerNorm(config.hidden_size) for _ in config.layer_types)
        self.mixers = nn.ModuleList(
            CachedAttention(config, i) if kind == "full_attention" else RecurrentMixer(config, i)
            for i, kind in enumerate(config.layer_types)
        )
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(
        self, input_ids: torch.Tensor, cache: Any = None, use_cache: bool | None = None, **kwargs: Any
    ) -> CausalLMOutputWithPast:
        h = self.embed(input_ids)
        attention = self.config.layer_types.index("full_attention")
        past = cache.get_seq_length(attention) if cache is not None else 0
        for norm, mixer in zip(self.norms, self.mixers):
            if isinstance(mixer, CachedAttention):
                h = h + mixer(norm(h), cache, past)
            else:
                h = h + mixer(norm(h), cache)
        return CausalLMOutputWithPast(logits=self.lm_head(h), past_key_values=cache)


def build_hybrid_lm(device: str = "meta", seed: int = 0, **config: Any) -> TinyHybridForCausalLM:
    """The tiny hybrid LM on ``device`` (random weights off meta), in eval mode."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = TinyHybridForCausalLM(TinyHybridConfig(**config))
    return model.eval()
