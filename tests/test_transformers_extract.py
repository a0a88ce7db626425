"""transformers GPT-2 and Llama from configs: extraction on meta, tied weights, large shapes, memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.transformers_models import build_causal_lm, causal_lm_inputs
from torch_ir import extract_ir, load_ir
from torch_ir.ir import Graph


def _storages(graph: Graph) -> set[frozenset[str]]:
    return {frozenset(w.names) for w in graph.weights.values()}


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_tiny_model_extracts_saves_and_loads(model_type: str, tmp_path: Path) -> None:
    args, kwargs = causal_lm_inputs("meta")
    ir = extract_ir(build_causal_lm(model_type), args, example_kwargs=kwargs)
    ir.verify()
    path = tmp_path / "ir.json"
    ir.save(path)
    loaded = load_ir(path)
    assert loaded == ir
    loaded.verify()
    assert loaded.outputs[0].shape == (1, 8, 128)  # logits
    assert loaded.graph.output_structure["keys"] == ["logits"]


def test_gpt2_tied_embedding_is_one_storage_with_two_names_after_save_load(tmp_path: Path) -> None:
    args, kwargs = causal_lm_inputs("meta")
    ir = extract_ir(build_causal_lm("gpt2"), args, example_kwargs=kwargs)
    path = tmp_path / "gpt2.json"
    ir.save(path)
    storages = _storages(load_ir(path).graph)
    assert frozenset({"transformer.wte.weight", "lm_head.weight"}) in storages
    assert not any(len(s) > 2 for s in storages)


def test_llama_non_persistent_rotary_buffer_is_recorded() -> None:
    args, kwargs = causal_lm_inputs("meta")
    ir = extract_ir(build_causal_lm("llama"), args, example_kwargs=kwargs, pipeline="none")
    inv_freq = ir.weights["model.rotary_emb.inv_freq"]
    assert inv_freq.kind == "buffer" and not inv_freq.persistent
    assert any(n.op_type == "aten._assert_tensor_metadata.default" for n in ir.nodes)


@pytest.mark.slow
def test_llama_2_7b_shape_extracts_on_meta() -> None:
    model = build_causal_lm(
        "llama",
        hidden_size=4096,
        intermediate_size=11008,
        num_attention_heads=32,
        num_key_value_heads=32,
        num_hidden_layers=32,
        vocab_size=32000,
        max_position_embeddings=4096,
    )
    args, kwargs = causal_lm_inputs("meta", seq=128)
    ir = extract_ir(model, args, example_kwargs=kwargs, pipeline="none")
    ir.verify()
    params = sum(w.type.numel for w in ir.weights.values() if w.kind == "parameter")
    assert 6.5e9 < params < 7.0e9
    assert len(ir.nodes) > 32 * 50  # about 60 operations per decoder layer
    assert ir.outputs[0].shape == (1, 128, 32000)


@pytest.mark.slow
def test_extraction_memory_stays_far_below_parameter_bytes(tmp_path: Path) -> None:
    """A 7.5 GB (fp32) Llama config (the 7B shape, 8 layers) extracts in a fresh process with a fifth of that
    in peak RSS, torch and transformers themselves included."""
    script = textwrap.dedent(
        """
        import json, resource, sys
        sys.path.insert(0, %r)
        from tests.transformers_models import build_causal_lm, causal_lm_inputs
        from torch_ir import extract_ir
        model = build_causal_lm("llama", hidden_size=4096, intermediate_size=11008, num_attention_heads=32,
                                num_key_value_heads=32, num_hidden_layers=8, vocab_size=32000)
        args, kwargs = causal_lm_inputs("meta", seq=64)
        ir = extract_ir(model, args, example_kwargs=kwargs)
        ir.save(%r)
        param_bytes = sum(w.type.nbytes for w in ir.weights.values() if w.kind != "derived")
        print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                          "param_bytes": param_bytes}))
        """
    ) % (str(Path(__file__).resolve().parents[1]), str(tmp_path / "ir.json"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["param_bytes"] > 7e9
    assert figures["peak"] < figures["param_bytes"] / 5, figures


def test_source_lines_of_installed_packages_are_stored_relative() -> None:
    """The same model gives the same IR on any machine: library paths do not carry the install folder."""
    args, kwargs = causal_lm_inputs("meta")
    ir = extract_ir(build_causal_lm("llama"), args, example_kwargs=kwargs, pipeline="none")
    files = {n.meta["source"]["file"] for n in ir.nodes if "source" in n.meta}
    assert "transformers/models/llama/modeling_llama.py" in files
    assert not any("site-packages" in f for f in files)
