"""Verification of modules with functions, read back from their files: the forward of each tiny decoder
traced with each layer once (``functions=True``), and its LLM program (``--generate``).

A weight of layer 1 perturbed on the IR's side must be reported inside the layer function, at the call site
of layer 1, whatever the architecture calls its layers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.testing.perturbed import verify_with_perturbed
from tests.transformers_models import build_causal_lm, causal_lm_inputs
from torch_ir import extract_ir, extract_llm, load_ir, verify_ir_with_state_dict
from torch_ir.ir.calls import CALL_OP
from torch_ir.ir.module import IR
from torch_ir.runtime.generation import verify_generation

pytest.importorskip("transformers")

LAYER_1 = {
    "llama": ("model.layers.1", "self_attn.v_proj.weight"),
    "qwen2": ("model.layers.1", "self_attn.v_proj.weight"),
    "gemma": ("model.layers.1", "self_attn.v_proj.weight"),
    "mixtral": ("model.layers.1", "self_attn.v_proj.weight"),
    "gpt2": ("transformer.h.1", "attn.c_attn.weight"),
}
"""Per architecture: the call site of layer 1, and a weight of its attention, by its name inside the layer."""


def _through_file(ir: IR, tmp_path: Path, name: str) -> IR:
    path = tmp_path / f"{name}.json"
    ir.save(path)
    return load_ir(path)


@pytest.mark.parametrize("model_type", list(LAYER_1))
def test_the_forward_with_functions_verifies_and_names_the_call_of_layer_1(model_type: str, tmp_path: Path) -> None:
    site, weight = LAYER_1[model_type]
    args, kwargs = causal_lm_inputs("meta")
    ir = extract_ir(build_causal_lm(model_type, "meta"), args, example_kwargs=kwargs, functions=True)
    assert sum(n.op_type == CALL_OP for n in ir.graph.nodes) == 2, "each decoder layer is a call"
    ir = _through_file(ir, tmp_path, model_type)
    model = build_causal_lm(model_type, "cpu")
    args, kwargs = causal_lm_inputs("cpu")
    ok, report = verify_ir_with_state_dict(ir, model.state_dict(), model, args, kwargs)
    assert ok, str(report)

    report = verify_with_perturbed(ir, model, args, f"{site}.{weight}", kwargs)
    divergence = report.divergence
    assert divergence is not None and divergence.site is not None, str(report)
    assert divergence.site.call == site, str(report)
    body = next(f.graph for f in ir.functions.values() if not f.public)
    assert divergence.site.node in {n.name for n in body.nodes}, "the node is named inside the function"
    assert divergence.module_path is not None and divergence.module_path.startswith(f"{site}."), str(report)


@pytest.mark.parametrize("model_type", list(LAYER_1))
def test_the_program_with_functions_generates_what_the_model_does(model_type: str, tmp_path: Path) -> None:
    program = extract_llm(build_causal_lm(model_type, "meta"), max_cache_len=16, functions=True)
    for entry in ("prefill", "decode"):
        assert sum(n.op_type == CALL_OP for n in program.entry(entry).nodes) == 2, entry
    program = _through_file(program, tmp_path, f"{model_type}-program")
    model = build_causal_lm(model_type, "cpu")
    passed, report = verify_generation(program, model, steps=4, trials=1)
    assert passed, str(report)

    perturbed = {k: v.clone() for k, v in model.state_dict().items()}
    site, weight = LAYER_1[model_type]
    perturbed[f"{site}.{weight}"] += 0.25 * torch.randn(perturbed[f"{site}.{weight}"].shape)
    passed, report = verify_generation(program, model, steps=4, trials=1, weights=perturbed)
    assert not passed and report.divergence is not None, str(report)
    assert report.divergence.site is not None and report.divergence.site.call == site, str(report)
    assert f"in call {site} of function" in str(report)
