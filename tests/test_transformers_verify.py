"""transformers GPT-2, Llama, Mixtral, Qwen2-MoE, Falcon, BERT and ViT from tiny configs: extract on meta
with the default pipeline, save, load, and verify against the real model with random weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.transformers_models import build_causal_lm, causal_lm_inputs
from torch_ir import extract_ir, load_ir, verify_ir_with_state_dict

pytest.importorskip("transformers")

TINY_ENCODERS: dict[str, dict[str, Any]] = {
    "bert": dict(
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
        vocab_size=128,
        max_position_embeddings=64,
        type_vocab_size=2,
        pad_token_id=0,
    ),
    "vit": dict(
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
        num_channels=3,
    ),
}


def build_encoder(model_type: str, device: str = "meta", seed: int = 0) -> torch.nn.Module:
    """A tiny transformers encoder (``AutoModel``) on ``device``, in eval mode."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.for_model(model_type, **TINY_ENCODERS[model_type])
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModel.from_config(config)
    return model.eval()


def encoder_inputs(model_type: str, device: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Inputs for a tiny encoder: token ids with a mask for BERT, a 32x32 image for ViT."""
    if model_type == "bert":
        ids = (torch.arange(16).reshape(2, 8) % 100 + 3).to(device)
        return (ids,), {"attention_mask": torch.ones(2, 8, dtype=torch.long, device=device)}
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(1, 3, 32, 32, generator=gen).to(device),), {}


CASES: dict[str, tuple[Callable[[str], torch.nn.Module], Callable[[str], Any]]] = {
    "gpt2": (lambda d: build_causal_lm("gpt2", d), causal_lm_inputs),
    "llama": (lambda d: build_causal_lm("llama", d), causal_lm_inputs),
    "mixtral": (lambda d: build_causal_lm("mixtral", d), causal_lm_inputs),
    "qwen2_moe": (lambda d: build_causal_lm("qwen2_moe", d), causal_lm_inputs),
    "falcon": (lambda d: build_causal_lm("falcon", d), causal_lm_inputs),
    "bert": (lambda d: build_encoder("bert", d), lambda d: encoder_inputs("bert", d)),
    "vit": (lambda d: build_encoder("vit", d), lambda d: encoder_inputs("vit", d)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_transformers_model_verifies(name: str, tmp_path: Path) -> None:
    build, inputs = CASES[name]
    args, kwargs = inputs("meta")
    ir = extract_ir(build("meta"), args, example_kwargs=kwargs)
    ir.save(tmp_path / f"{name}.json")
    ir = load_ir(tmp_path / f"{name}.json")
    real = build("cpu")
    args, kwargs = inputs("cpu")
    is_valid, report = verify_ir_with_state_dict(
        ir=ir, state_dict=real.state_dict(), original_model=real, test_inputs=args, test_kwargs=kwargs
    )
    assert is_valid, str(report)


def test_llama_with_dynamic_sequence_verifies_at_other_lengths(tmp_path) -> None:
    """Exported once with a symbolic ``seq`` (default pipeline, annotate-shapes on symbols), saved, loaded,
    and verified at lengths other than the example's."""
    from torch.export import Dim

    args, kwargs = causal_lm_inputs("meta", seq=8)
    ir = extract_ir(
        build_causal_lm("llama"),
        (),
        example_kwargs={"input_ids": args[0], **kwargs},
        dynamic_shapes={"input_ids": {1: Dim("seq", min=2, max=64)}, "use_cache": None},
    )
    assert ir.inputs[0].shape == (1, "seq") and ir.outputs[0].shape == (1, "seq", 128)
    ir.save(tmp_path / "llama.json")
    loaded = load_ir(tmp_path / "llama.json")
    real = build_causal_lm("llama", device="cpu")
    for seq in (5, 17):
        ids, kw = causal_lm_inputs("cpu", seq=seq)
        ok, report = verify_ir_with_state_dict(
            ir=loaded,
            state_dict=real.state_dict(),
            original_model=real,
            test_inputs=(),
            test_kwargs={"input_ids": ids[0], **kw},
        )
        assert ok, report
