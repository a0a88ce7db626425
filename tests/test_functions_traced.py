"""Extraction with functions: each distinct repeated block traced once, the model with calls.

"The same module" is exact equality (``Module.__eq__``: every function's inputs, nodes with their names,
operands, attributes, types and metadata, outputs, state updates, symbols, the weight table, in order) of
``extract_ir(model, functions=True)`` and ``extract_ir(model, pipeline="none")`` run through the same
``functions`` pipeline (``annotate-shapes,canonicalize,outline-repeated-blocks,cse,...``). Names of values
inside a body are the flat trace's names of the first block, and each call keeps the names of its own block.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import torch_ir
from tests.transformers_models import TINY, build_causal_lm, causal_lm_inputs
from torch_ir import TorchIRWarning, extract_ir
from torch_ir.cli import main
from torch_ir.frontends.model_specs import resolve_model
from torch_ir.ir.calls import CALL_OP, callee_name
from torch_ir.passes import PassManager
from torch_ir.passes.pipeline import FUNCTIONS_PIPELINE

HF = ["gpt2", "llama", "mixtral", "deepseek_v3", "qwen2_moe", "falcon", "qwen2", "qwen3", "mistral", "gemma"]
LAYERS = {"deepseek_v3": 3}
"""DeepSeek-V3's first layer is dense and the others are mixtures of experts: three layers make two alike."""


def _both(model: nn.Module, args: tuple, kwargs: dict | None = None) -> tuple[torch_ir.IR, torch_ir.IR]:
    """The module extracted with functions, and the flat extraction through the same pipeline."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", TorchIRWarning)  # a group traced inline would say so
        traced = extract_ir(model, args, example_kwargs=kwargs, functions=True)
    flat = extract_ir(model, args, example_kwargs=kwargs, pipeline="none")
    PassManager(FUNCTIONS_PIPELINE).run(flat)
    return traced, flat


def _layers(model_type: str) -> int:
    config = TINY[model_type]
    return LAYERS.get(model_type, config.get("num_hidden_layers", config.get("n_layer", 0)))


@pytest.mark.slow
@pytest.mark.parametrize("model_type", HF)
def test_traced_once_is_the_flat_extraction_outlined(model_type: str) -> None:
    args, kwargs = causal_lm_inputs("meta")
    extra = {"num_hidden_layers": LAYERS[model_type]} if model_type in LAYERS else {}
    traced, flat = _both(build_causal_lm(model_type, "meta", **extra), args, kwargs)
    assert traced == flat
    calls = [n for n in traced.graph.nodes if n.op_type == CALL_OP]
    expected = _layers(model_type) - (1 if model_type == "deepseek_v3" else 0)  # its dense layer stays inline
    assert len(calls) == expected
    layers = "transformer.h" if model_type in ("gpt2", "falcon") else "model.layers"
    assert [n.meta["module_path"] for n in calls][-1] == f"{layers}.{_layers(model_type) - 1}"
    assert len(traced.functions) == 2 and traced.stages.to_dict()


@pytest.mark.parametrize("name", ["gpt", "resnet"])
def test_traced_once_on_the_zoo(name: str) -> None:
    bundle = resolve_model(f"zoo:{name}")
    traced, flat = _both(bundle.model, bundle.args)
    assert traced == flat
    assert any(not f.public for f in traced.functions.values())


def test_a_body_is_traced_once_and_each_call_keeps_its_blocks_names() -> None:
    args, kwargs = causal_lm_inputs("meta")
    model = build_causal_lm("llama", "meta", num_hidden_layers=4)
    ir = extract_ir(model, args, example_kwargs=kwargs, functions=True, pipeline="none")
    calls = [n for n in ir.graph.nodes if n.op_type == CALL_OP]
    assert [c.meta["module_path"] for c in calls] == [f"model.layers.{i}" for i in range(4)]
    assert {callee_name(c) for c in calls} == {"llama_decoder_layer"}
    body = ir.function("llama_decoder_layer").graph
    assert body.meta == {
        "module_path": "model.layers.0",
        "module_type": "transformers.models.llama.modeling_llama.LlamaDecoderLayer",
    }
    assert [v.name for v in body.inputs][:2] == ["hidden_states", "attention_mask"]
    assert "self_attn.q_proj.weight" in [v.name for v in body.inputs]
    first, last = calls[0].meta["inline"]["nodes"], calls[-1].meta["inline"]["nodes"]
    assert first == [n.name for n in body.nodes] and len(last) == len(first) and last != first
    assert calls[-1].inputs[-1].name.startswith("model.layers.3.")  # each call binds its own layer's weights
    assert ir.graph.nodes[0].meta["module_stack"][0][0] == ""


def test_extraction_with_functions_computes_what_the_model_does() -> None:
    (ids,), kwargs = causal_lm_inputs("cpu")
    real = build_causal_lm("llama", "cpu", num_hidden_layers=3)
    ir = extract_ir(
        build_causal_lm("llama", "meta", num_hidden_layers=3), (ids.to("meta"),), example_kwargs=kwargs, functions=True
    )
    torch.testing.assert_close(torch_ir.run(ir, real, ids, **kwargs)["logits"], real(ids, **kwargs).logits)


def test_statistics_count_each_call_of_a_body() -> None:
    from torch_ir.analysis.statistics import compute_statistics

    args, kwargs = causal_lm_inputs("meta")
    model = build_causal_lm("llama", "meta", num_hidden_layers=3)
    traced = compute_statistics(extract_ir(model, args, example_kwargs=kwargs, functions=True))
    flat = compute_statistics(extract_ir(model, args, example_kwargs=kwargs))
    assert traced.op_histogram[CALL_OP] == 3 and traced.num_nodes < flat.num_nodes
    assert (traced.flops, traced.macs, traced.flops_by_op) == (flat.flops, flat.macs, flat.flops_by_op)
    assert CALL_OP not in traced.uncounted_ops


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


class IndexedScale(nn.Module):
    """Blocks alike in class, weights and attributes, whose code reads their index (as GPT-2's
    ``scale_attn_by_inverse_layer_idx`` does)."""

    def __init__(self, layers: int = 4) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_Block() for _ in range(layers))
        for i, block in enumerate(self.blocks):
            block.layer_idx = i
            block.forward = _scaled(block)  # type: ignore[method-assign]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def _scaled(block: _Block):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(block.fc(x)) / (block.layer_idx + 1)

    return forward


class Shared(nn.Module):
    """One block called twice: its nodes do not stand together, so it is no function."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_Block() for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in (*self.blocks, self.blocks[0]):
            x = block(x)
        return x


class _Reader(_Block):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x)) + self.bias_now


class ReadsOutside(nn.Module):
    """Blocks that read a tensor the parent hands them as an attribute, not as an argument."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_Reader() for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            block.bias_now = x.mean()
            x = block(x)
        return x


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (IndexedScale(), r"blocks\.1 does not compute what blocks\.0 does"),
        (Shared(), r"blocks\.0 is called more than once"),
        (ReadsOutside(), r"blocks\.0 reads a tensor that is neither one of its arguments nor one of its weights"),
    ],
)
def test_a_group_not_proven_alike_is_traced_block_by_block(model: nn.Module, reason: str) -> None:
    x = torch.randn(2, 8)
    with pytest.warns(TorchIRWarning, match=reason):
        traced = extract_ir(model, (x,), functions=True)
    flat = extract_ir(model, (x,), pipeline="none")
    PassManager(FUNCTIONS_PIPELINE).run(flat)
    assert traced == flat
    torch.testing.assert_close(torch_ir.run(traced, model, x), model(x))


def test_cli_extract_functions_writes_the_module_the_api_gives(tmp_path: Path) -> None:
    path = tmp_path / "gpt.json"
    assert main(["extract", "zoo:gpt", "--functions", "-o", str(path), "-q"]) == 0
    loaded = torch_ir.load_ir(path)
    bundle = resolve_model("zoo:gpt")
    assert loaded.to_text() == extract_ir(bundle.model, bundle.args, functions=True).to_text()
    calls = [n for n in loaded.graph.nodes if n.op_type == CALL_OP]
    assert len(calls) >= 2 and len({callee_name(c) for c in calls}) == 1
    flat = tmp_path / "flat.json"
    assert main(["extract", "zoo:gpt", "-o", str(flat), "-q"]) == 0  # without the flag: flat, as before
    assert not any(n.op_type == CALL_OP for n in torch_ir.load_ir(flat).graph.nodes)
    assert flat.stat().st_size > path.stat().st_size


def test_cli_functions_refuses_decompose(capsys: pytest.CaptureFixture) -> None:
    assert main(["extract", "zoo:gpt", "--functions", "--decompose", "core_aten", "-q"]) == 2
    assert "--functions traces blocks as torch.export gives them: drop --decompose" in capsys.readouterr().err


def test_cli_llm_program_with_and_without_functions(tmp_path: Path) -> None:
    config = ",".join(f"{k}={v}" for k, v in TINY["llama"].items())
    path = tmp_path / "llm.json"
    argv = ["extract", "hf:llama", "--config", config, "--kv-cache", "static", "--max-cache-len", "16", "-q"]
    assert main([*argv, "-o", str(path)]) == 0  # flat unless asked
    program = torch_ir.load_ir(path)
    assert list(program.functions) == ["prefill", "decode"]
    assert not any(n.op_type == CALL_OP for e in ("prefill", "decode") for n in program.entry(e).nodes)
    assert main([*argv, "--functions", "-o", str(path)]) == 0
    program = torch_ir.load_ir(path)
    assert list(program.functions) == ["prefill", "decode", "llama_decoder_layer", "llama_decoder_layer_2"]
    assert sum(n.op_type == CALL_OP for n in program.entry("decode").nodes) == 2
