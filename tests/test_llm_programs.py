"""LLM deployment programs: prefill + decode over one weight table and a declared KV-cache state, extracted
weight-free, saved, loaded, and verified by greedy generation against eager transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.transformers_models import TINY, build_causal_lm
from torch_ir import IRError, VerificationError, extract_llm, load_ir
from torch_ir.cli import main
from torch_ir.errors import ExportError
from torch_ir.frontends.llm import build_cache_module
from torch_ir.ir.calls import CALL_OP
from torch_ir.ir.text import parse_module, print_module
from torch_ir.runtime.generation import verify_generation
from torch_ir.runtime.program import ProgramRunner
from torch_ir.serde import load_schema

pytest.importorskip("transformers")

LLAMA_CONFIG = ",".join(f"{k}={v}" for k, v in TINY["llama"].items())
QWEN2_CONFIG = ",".join(f"{k}={v}" for k, v in TINY["qwen2"].items())


@pytest.fixture(scope="module")
def llama_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("llm") / "llm.json"
    cache = ["--kv-cache", "static", "--max-cache-len", "64"]
    code = main(["extract", "hf:llama", "--config", LLAMA_CONFIG, *cache, "--functions", "-o", str(path), "-q"])
    assert code == 0
    return path


def test_extract_writes_one_file_with_both_entries(llama_program: Path) -> None:
    doc = json.loads(llama_program.read_text())
    module = doc["module"]
    assert [(f["name"], f.get("public", True)) for f in module["functions"]] == [
        ("prefill", True),
        ("decode", True),
        ("llama_decoder_layer", False),
        ("llama_decoder_layer_2", False),
    ]
    # one weight table: each parameter once, in the module; the functions' graphs have none of their own
    names = [w["name"] for w in module["weights"]]
    assert len(names) == len(set(names)) and "model.embed_tokens.weight" in names
    assert all("weights" not in f["graph"] for f in module["functions"])
    decode_text = json.dumps(module["functions"][1]["graph"])
    assert '"@model.embed_tokens.weight"' in decode_text
    assert [s["name"] for s in module["state"]][:3] == ["key_cache_0", "value_cache_0", "cumulative_length_0"]
    assert module["state"][0]["type"] == {"shape": [1, 2, 64, 8], "dtype": "float32"}
    assert module["state"][0].get("init", "zeros") == "zeros"
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(doc, load_schema())
    ir = load_ir(llama_program)
    prefill, decode = ir.entry("prefill"), ir.entry("decode")
    assert prefill.inputs[0].shape == (1, "seq") and prefill.symbols["seq"].max == 64
    assert decode.inputs[0].shape == (1, 1)
    assert {u.target for u in decode.state_updates} == set(ir.state)
    with pytest.raises(IRError, match="program with entries prefill, decode"):
        _ = ir.nodes


def test_cli_generation_passes_and_reports_every_step(llama_program: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["verify", str(llama_program), "--model", "hf:llama", "--config", LLAMA_CONFIG, "--generate", "8"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "generation check of llama: PASSED" in out
    assert out.count(" decode ") == 8 and out.count(" prefill ") == 1


def test_cli_generation_fails_on_a_changed_ir_and_names_step_and_node(
    llama_program: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    doc = json.loads(llama_program.read_text())
    nodes = next(f for f in doc["module"]["functions"] if f["name"] == "decode")["graph"]["nodes"]
    scaled = next(n for n in nodes if n["op"] == "aten.mul.Tensor" and "other" in n.get("attrs", {}))
    scaled["attrs"]["other"] = float(scaled["attrs"]["other"]) * 1.5
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    code = main(["verify", str(broken), "--model", "hf:llama", "--config", LLAMA_CONFIG, "--generate", "4"])
    out = capsys.readouterr().out
    assert code == 1
    assert "first divergence: step 1 (decode)" in out
    assert f"first node that differs: {scaled['name']} " in out


def test_perturbed_bound_weight_fails_at_prefill_and_names_its_node() -> None:
    ir = extract_llm(build_causal_lm("llama", "meta"), max_cache_len=32, functions=True)
    real = build_causal_lm("llama", "cpu")
    weights = {k: v.clone() for k, v in real.state_dict().items()}
    weights["model.layers.1.mlp.down_proj.weight"] += 0.05
    ok, report = verify_generation(ir, real, steps=3, weights=weights)
    assert not ok and report.first_failure is not None and report.first_failure.step == 0
    assert report.divergence is not None
    assert report.divergence.module_path == "model.layers.1.mlp.down_proj"
    site = report.divergence.site  # inside the layer's function, at layer 1's call
    assert site is not None and site.function.startswith("llama_decoder_layer")
    assert "module: model.layers.1.mlp.down_proj" in str(report)
    assert f"of function {site.function}" in str(report)
    ok, report = verify_generation(ir, real, steps=3)
    assert ok, str(report)


@pytest.mark.parametrize("model_type", ["qwen2", "qwen3", "mistral", "gemma", "gpt2"])
def test_architectures_generate_like_eager(model_type: str, tmp_path: Path) -> None:
    ir = extract_llm(build_causal_lm(model_type, "meta"), max_cache_len=24, max_prefill_len=12)
    ir.save(tmp_path / "p.json")
    loaded = load_ir(tmp_path / "p.json")
    assert loaded == ir
    ok, report = verify_generation(loaded, build_causal_lm(model_type, "cpu"), steps=4, prompt_len=6)
    assert ok, str(report)


def test_qwen2_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "qwen2.json"
    base = ["hf:qwen2", "--config", QWEN2_CONFIG]
    assert main(["extract", *base, "--kv-cache", "static", "--max-cache-len", "32", "-o", str(path), "-q"]) == 0
    assert main(["verify", str(path), "--model", *base, "--generate", "4"]) == 0


def test_runner_carries_the_cache_and_resets() -> None:
    ir = extract_llm(build_causal_lm("llama", "meta"), max_cache_len=16, pipeline="none")
    real = build_causal_lm("llama", "cpu")
    runner = ProgramRunner(ir, real, strict=False)
    eager = build_cache_module(real, 1, 16)
    prompt = torch.tensor([[5, 9, 14, 3]])
    with torch.no_grad():
        torch.testing.assert_close(
            runner("prefill", input_ids=prompt, cache_position=torch.arange(4)),
            eager(input_ids=prompt, cache_position=torch.arange(4)),
        )
        assert runner.state["key_cache_0"][:, :, :4].abs().sum() > 0
        assert runner.state["key_cache_0"][:, :, 4:].abs().sum() == 0
        token = torch.tensor([[7]])
        torch.testing.assert_close(
            runner("decode", input_ids=token, cache_position=torch.tensor([4])),
            eager(input_ids=token, cache_position=torch.tensor([4])),
        )
    runner.reset()
    assert all(float(t.abs().sum()) == 0 for t in runner.state.values())


def test_layers_traced_once_compute_what_the_flat_trace_computes() -> None:
    """The two routes: each decoder layer a call of one function traced once (``functions=True``), and every
    layer traced inline (the default); both write the cache as state, and run alike step by step."""
    meta = build_causal_lm("llama", "meta")
    traced = extract_llm(meta, max_cache_len=16, functions=True)
    flat = extract_llm(meta, max_cache_len=16)
    assert not flat.functions.keys() - {"prefill", "decode"}
    for entry in ("prefill", "decode"):
        calls = [n for n in traced.entry(entry).nodes if n.op_type == CALL_OP]
        assert [n.meta["module_path"] for n in calls] == ["model.layers.0", "model.layers.1"]
        assert not any(n.op_type == CALL_OP for n in flat.entry(entry).nodes)
        assert {u.target for u in traced.entry(entry).state_updates} == {
            u.target for u in flat.entry(entry).state_updates
        }
    assert list(traced.state) == list(flat.state)
    real = build_causal_lm("llama", "cpu")
    runners = [ProgramRunner(ir, real, strict=False) for ir in (traced, flat)]
    prompt, token = torch.tensor([[5, 9, 14, 3]]), torch.tensor([[7]])
    with torch.no_grad():
        first = [r("prefill", input_ids=prompt, cache_position=torch.arange(4)) for r in runners]
        torch.testing.assert_close(first[0], first[1])
        second = [r("decode", input_ids=token, cache_position=torch.tensor([4])) for r in runners]
        torch.testing.assert_close(second[0], second[1])
    for name in flat.state:
        torch.testing.assert_close(runners[0].state[name], runners[1].state[name])
    assert runners[0].state["key_cache_1"][:, :, :5].abs().sum() > 0
    # a layer function costs at each of its calls: the same FLOPs once the calls are inlined
    from torch_ir.analysis.statistics import program_statistics
    from torch_ir.passes import PassManager

    with_calls = [(e.entry, e.flops) for e in program_statistics(traced).entries]
    PassManager("inline").run(traced)
    assert not traced.functions.keys() - {"prefill", "decode"}
    assert with_calls == [(e.entry, e.flops) for e in program_statistics(traced).entries]
    assert all(flops for _, flops in with_calls)


def test_program_text_round_trips() -> None:
    ir = extract_llm(build_causal_lm("llama", "meta"), max_cache_len=16)
    text = ir.to_text()
    assert text.startswith("module {\n  weight @model.embed_tokens.weight : f32[")
    assert "\n  state @key_cache_0 : f32[1,2,16,8] zeros\n" in text
    assert "\n  func prefill graph(%input_ids: i64[1,seq], %cache_position: i64[seq]) {\n" in text
    assert text.count("weight @model.embed_tokens.weight :") == 1  # one weight table, written once
    assert "update @key_cache_0 = " in text
    assert print_module(parse_module(text)) == text
    # the pipeline ran once on the module, each pass over both entries
    assert [row["pass"] for row in ir.pass_log][:2] == ["annotate-shapes", "canonicalize"]


def test_program_statistics_count_weights_once_and_the_cache() -> None:
    from torch_ir.analysis.statistics import program_statistics

    model = build_causal_lm("llama", "meta")
    ir = extract_llm(model, max_cache_len=16)
    stats = program_statistics(ir)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    rotary = model.model.rotary_emb.inv_freq  # the one buffer the entries read besides the cache
    assert stats.weight_bytes == params + rotary.numel() * rotary.element_size()
    layers, heads, head_dim = 2, 2, 8
    assert stats.state_bytes == layers * 2 * (16 * heads * head_dim * 4) + layers * 8
    decode = next(e for e in stats.entries if e.entry == "decode")
    prefill = next(e for e in stats.entries if e.entry == "prefill")
    assert prefill.bindings == {"seq": 16} and decode.flops and prefill.flops and prefill.flops > 8 * decode.flops


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["zoo:gpt", "--kv-cache", "static", "--max-cache-len", "16"], "not a transformers causal LM"),
        (["hf:llama", "--config", LLAMA_CONFIG, "--kv-cache", "static", "--max-cache-len", "0"], "at least 2"),
        (["hf:llama", "--config", LLAMA_CONFIG, "--kv-cache", "static", "--max-cache-len", "65"], "beyond the model"),
        (["hf:llama", "--config", LLAMA_CONFIG, "--kv-cache", "static"], "needs --max-cache-len"),
        (["hf:llama", "--config", LLAMA_CONFIG, "--max-cache-len", "16"], "need --kv-cache"),
    ],
)
def test_bad_llm_extraction_is_a_usage_error(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["extract", *argv, "-q"]) == 2
    assert message in capsys.readouterr().err


def test_generate_on_a_single_graph_ir_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "gpt.json"
    assert main(["extract", "zoo:gpt", "-o", str(path), "-q"]) == 0
    assert main(["verify", str(path), "--model", "zoo:gpt", "--generate", "2"]) == 2
    assert "needs a program with prefill and decode entries" in capsys.readouterr().err


def test_sliding_window_longer_than_the_cache_is_refused() -> None:
    model = build_causal_lm("llama", "meta")
    model.config.sliding_window = 8
    model.config.layer_types = ["sliding_attention", "full_attention"]
    with pytest.raises(ExportError, match=r"layer 0: sliding window 8\), and its masks do not apply that window"):
        extract_llm(model, max_cache_len=16)


def test_program_verify_without_generate_says_how(llama_program: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["verify", str(llama_program), "--model", "hf:llama", "--config", LLAMA_CONFIG]) == 2
    assert "verify it with --generate N" in capsys.readouterr().err
    with pytest.raises(VerificationError, match="steps must be"):
        verify_generation(load_ir(llama_program), build_causal_lm("llama", "cpu"), steps=-1)


def test_program_reports_one_section_per_entry_and_the_state(tmp_path: Path) -> None:
    path = tmp_path / "llm.json"
    cache = ["--kv-cache", "static", "--max-cache-len", "16", "--format", "json,mermaid,markdown"]
    assert main(["extract", "hf:llama", "--config", LLAMA_CONFIG, *cache, "-o", str(path), "-q"]) == 0
    report = (tmp_path / "llm.md").read_text()
    assert "## State" in report and "| `key_cache_0` | `f32[1,2,16,8]` | zeros |" in report
    assert "## Entry prefill" in report and "## Entry decode" in report
    assert "decode    " in report and "FLOPs per token" in report
    for entry in ("prefill", "decode"):
        assert (tmp_path / f"llm.{entry}.mmd").read_text().startswith(("flowchart", "%%", "---"))


def test_report_of_a_program(llama_program: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(llama_program), "--stats"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("program     ") and "FLOPs per token" in out and "KV cache at full length" in out
    assert main(["report", str(llama_program), "--stats", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["entry"] for e in doc["entries"]] == ["prefill", "decode"] and doc["state_bytes"] > 0
    assert main(["report", str(llama_program), "--format", "mermaid"]) == 2
    assert "give --entry (prefill or decode)" in capsys.readouterr().err
    assert main(["report", str(llama_program), "--format", "mermaid", "--entry", "decode"]) == 0
    assert capsys.readouterr().out.startswith(("flowchart", "%%", "---"))
    assert main(["report", str(llama_program), "--entry", "encode"]) == 2
    assert "no entry 'encode'" in capsys.readouterr().err
