"""Capture patterns found on models written elsewhere, each on a model that shows it:

1. sliding-window layers are judged by what the model does (layer types, the window its masks apply);
2. annotate-shapes keeps a recorded symbolic type where a kernel specializes, or branches disagree in size;
3. a ``while_loop`` carries a Python int;
4. ``torch.vmap`` and ``associative_scan`` are batched by functionalization;
5. hybrid caches (linear-attention and state-space layers) are state next to the KV cache;
6. a size the trace pins to one value is reported at extraction;
7. an export failure says torch's message, where the model's code raised it, and its cause.
"""

from __future__ import annotations

import importlib.util
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.models import get_model
from tests.transformers_models import TINY, build_causal_lm
from torch_ir import ExportError, PassError, TensorType, extract_ir, load_ir, parse_graph
from torch_ir.cli import main
from torch_ir.errors import TorchIRWarning
from torch_ir.frontends.pinned_sizes import PinnedSize
from torch_ir.ir.regions import check_region_op
from torch_ir.passes.manager import run_pipeline
from torch_ir.runtime.interpreter import Interpreter

ROOT = Path(__file__).resolve().parent.parent


def _extract(name: str, pipeline: str = "default") -> Any:
    case = get_model(name)
    args, kwargs = case.inputs("meta")
    return extract_ir(
        case.build_meta(), args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes, pipeline=pipeline
    )


def _run_against_eager(name: str, ir: Any) -> None:
    case = get_model(name)
    real = case.build_real()
    args, kwargs = case.inputs("cpu")
    with torch.no_grad():
        got, expected = Interpreter(ir, real)(*args, **kwargs), real(*args, **kwargs)
    pairs = zip(got, expected) if isinstance(expected, tuple) else [(got, expected)]
    for a, b in pairs:
        if isinstance(b, torch.Tensor):
            torch.testing.assert_close(a, b)
        else:
            assert a == b


# ------------------------------------------------------------------ 1. sliding windows

transformers = pytest.importorskip("transformers")


def _config(model_type: str, **overrides: Any) -> Any:
    from transformers import AutoConfig

    return AutoConfig.for_model(model_type, **{**TINY.get(model_type, TINY["llama"]), **overrides})


def test_windows_are_read_from_the_layer_types() -> None:
    from torch_ir.frontends.llm import sliding_windows

    gemma2 = _config("gemma2", head_dim=8, sliding_window=4)
    assert gemma2.layer_types == ["sliding_attention", "full_attention"]
    assert sliding_windows(gemma2, 24) == {("sliding", 4): [0]}
    assert sliding_windows(gemma2, 4) == {}  # a window as long as the cache never slides
    mistral = _config("mistral", sliding_window=4)  # no layer types: every layer has the window
    assert sliding_windows(mistral, 24) == {("sliding", 4): [0, 1]}
    qwen2_moe = _config("qwen2_moe")  # use_sliding_window=False: a window of 0, every layer full
    assert qwen2_moe.sliding_window == 0 and sliding_windows(qwen2_moe, 24) == {}
    assert sliding_windows(_config("mistral", sliding_window=None), 24) == {}


def test_a_window_of_zero_with_sliding_off_extracts() -> None:
    from torch_ir import extract_llm

    model = build_causal_lm("qwen2_moe", "meta")
    assert model.config.sliding_window == 0
    ir = extract_llm(model, max_cache_len=16, pipeline="none")
    assert ir.state["key_cache_0"].type.shape == (1, 2, 16, 8)


@pytest.mark.parametrize("model_type", ["gemma2", "mistral"])
def test_a_window_shorter_than_the_cache_generates_past_it(model_type: str) -> None:
    """A prompt of 8 tokens and 8 generated ones over a window of 4: the IR generates what eager transformers
    generates, and what the model computes over the whole sequence at once with its own window."""
    from transformers import AutoModelForCausalLM

    from torch_ir import extract_llm
    from torch_ir.runtime.generation import verify_generation
    from torch_ir.runtime.program import ProgramRunner

    config = _config(model_type, head_dim=8, sliding_window=4)
    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(config).eval()
    ir = extract_llm(meta, max_cache_len=24)
    torch.manual_seed(0)
    real = AutoModelForCausalLM.from_config(config).eval()
    prompt = torch.randint(3, 128, (1, 8), generator=torch.Generator().manual_seed(1))
    ok, report = verify_generation(ir, real, steps=8, prompt=prompt)
    assert ok, str(report)
    tokens = torch.tensor([prompt[0].tolist() + [s.token_eager for s in report.steps[:-1]]])
    runner = ProgramRunner(ir, real)
    with torch.no_grad():
        logits = [runner("prefill", input_ids=prompt, cache_position=torch.arange(8))[0, -1]]
        for position in range(8, tokens.shape[1]):
            token = tokens[:, position : position + 1]
            logits.append(runner("decode", input_ids=token, cache_position=torch.tensor([position]))[0, -1])
        windowed = real(tokens).logits[0, 7:]
        real.config.sliding_window = 64  # the same model without its window sees more, and computes otherwise
        unwindowed = real(tokens).logits[0, 7:]
    torch.testing.assert_close(torch.stack(logits), windowed, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(torch.stack(logits), unwindowed, rtol=1e-3, atol=1e-3)


def test_generation_past_the_window_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ",".join(f"{k}={v}" for k, v in {**TINY["gemma"], "sliding_window": 4}.items())
    path = tmp_path / "gemma2.json"
    base = ["hf:gemma2", "--config", config]
    assert main(["extract", *base, "--kv-cache", "static", "--max-cache-len", "24", "-o", str(path), "-q"]) == 0
    assert main(["verify", str(path), "--model", *base, "--generate", "8", "--prompt-len", "8"]) == 0
    assert "PASSED" in capsys.readouterr().out


def test_a_model_whose_masks_ignore_the_window_is_refused() -> None:
    from torch_ir import extract_llm

    model = build_causal_lm("llama", "meta")  # llama's code builds only causal masks
    model.config.sliding_window = 4
    model.config.layer_types = ["sliding_attention", "full_attention"]
    with pytest.raises(ExportError, match=r"layer 0: sliding window 4\), and its masks do not apply") as info:
        extract_llm(model, max_cache_len=16)
    assert "max_cache_len <= 4" in str(info.value)
    extract_llm(model, max_cache_len=4, pipeline="none")  # a window as long as the cache: nothing slides


# ------------------------------------------------------------------ 2. annotate-shapes


def test_a_kernel_that_specializes_keeps_the_recorded_symbolic_type() -> None:
    ir = _extract("pad_dynamic_batch")
    pad = next(n for n in ir.nodes if n.op_type == "aten.pad.default")
    assert pad.outputs[0].type == TensorType(("batch", 3, 6), "float32")
    assert ir.nodes[-1].outputs[0].type == TensorType(("batch", 3, 5), "float32")  # the next node is symbolic too
    _run_against_eager("pad_dynamic_batch", ir)


@pytest.mark.parametrize(
    ("recorded", "wrong"),
    [(TensorType(("batch", 3, 7), "float32"), "f32[batch,3,7]"), (TensorType(("batch", 3, 6), "float16"), "f16")],
)
def test_a_specializing_kernel_still_catches_contradictions(recorded: TensorType, wrong: str) -> None:
    ir = _extract("pad_dynamic_batch", pipeline="none")
    pad = next(n for n in ir.nodes if n.op_type == "aten.pad.default")
    pad.outputs[0].type = recorded
    with pytest.raises(PassError, match=rf"recorded as {re.escape(wrong)}.*the kernel computes .*batch specialized"):
        run_pipeline(ir, "annotate-shapes")


def test_cond_branches_of_different_lengths_keep_the_unbacked_size() -> None:
    ir = _extract("cond_ragged")
    cond = next(n for n in ir.nodes if n.op_type == "higher_order.cond")
    (size, width) = cond.outputs[0].type.shape
    assert isinstance(size, str) and size in ir.graph.symbols and width == 4
    assert [r.outputs[0].type.shape for r in cond.regions] == [(2, 4), (3, 4)]
    _run_against_eager("cond_ragged", ir)
    cond.outputs[0].type = TensorType((size, 5), "float32")  # a static size no branch gives
    with pytest.raises(PassError, match=r"recorded as f32\[u\d+,5\]"):
        run_pipeline(ir, "annotate-shapes")


# ------------------------------------------------------------------ 3. while_loop with a Python int


def test_while_loop_carries_a_python_int(tmp_path: Path) -> None:
    ir = _extract("while_int_carry")
    loop = next(n for n in ir.nodes if n.op_type == "higher_order.while_loop")
    assert loop.args[0][0] == 0 and [str(v.type) for v in loop.regions[0].inputs] == ["int", "f32[4]"]
    text = ir.to_text()
    assert "higher_order.while_loop([0, %x], [])" in text and str(parse_graph(text)) == text
    ir.save(tmp_path / "loop.json")
    loaded = load_ir(tmp_path / "loop.json")
    assert loaded == ir
    _run_against_eager("while_int_carry", loaded)
    x = torch.randn(4)
    steps, out = Interpreter(loaded, {})(x)
    assert steps == 3 and torch.allclose(out, ((x * 2 + 0) * 2 + 1) * 2 + 2)


def test_a_carried_value_that_is_no_number_is_refused_by_the_contract() -> None:
    ir = _extract("while_int_carry", pipeline="none")
    loop = next(n for n in ir.nodes if n.op_type == "higher_order.while_loop")
    loop.args[0][0] = "zero"
    assert "operand group carried must be a list of values and numbers" in str(check_region_op(loop))
    loop.args[0][0] = 0
    loop.args.insert(0, 1.5)  # a number where the contract has no group for it
    assert "operand groups" in str(check_region_op(loop))


# ------------------------------------------------------------------ 4. vmap and associative_scan


@pytest.mark.parametrize("name", ["vmap_rows", "associative_scan_recurrence"])
def test_batching_transforms_become_batched_ops(name: str) -> None:
    ir = _extract(name)
    assert "functionalize" in [s.name for s in ir.stages.stages]
    assert all(n.op_type.startswith(("aten.", "operator.")) for n in ir.nodes)
    _run_against_eager(name, ir)


def test_vmapped_module_runs_once_over_the_batch() -> None:
    ir = _extract("vmap_rows")
    matmul = next(n for n in ir.nodes if n.op_type == "aten.matmul.default")  # the batching rule of linear
    assert matmul.inputs[0].shape[0] == 5 and matmul.outputs[0].shape == (5, 1, 4)
    assert all(5 in v.shape for n in ir.nodes for v in n.outputs)  # no per-row value: every op is batched


def test_associative_scan_in_a_mode_torch_refuses_on_this_device_names_it() -> None:
    from torch._higher_order_ops.associative_scan import associative_scan

    class PointwiseScan(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return associative_scan(lambda a, b: a + b, x, dim=0)

    with pytest.raises(ExportError, match="torch's associative_scan") as info:
        extract_ir(PointwiseScan(), (torch.randn(6),))
    assert info.value.cause == "unsupported" and "combine_mode='pointwise'" in str(info.value)


# ------------------------------------------------------------------ 5. hybrid caches


@pytest.fixture(scope="module")
def hybrid_program() -> Any:
    from tests.models.hybrid_lm import build_hybrid_lm
    from torch_ir import extract_llm

    return extract_llm(build_hybrid_lm(), max_cache_len=16)


def test_hybrid_cache_states_are_declared_state(hybrid_program: Any) -> None:
    state = {name: spec.type.shape for name, spec in hybrid_program.state.items()}
    assert state["key_cache_1"] == (1, 2, 16, 8)  # the attention layer's KV cache
    assert state["conv_states_0_0"] == state["conv_states_2_0"] == (1, 16, 2)  # the recurrent layers' states
    assert state["recurrent_states_0_0"] == state["recurrent_states_2_0"] == (1, 16)
    assert next(iter(state)) != "key_cache_1" and list(state).index("key_cache_1") < list(state).index(
        "conv_states_0_0"
    )
    decode = hybrid_program.entry("decode")
    assert {"conv_states_0_0", "recurrent_states_2_0", "key_cache_1"} <= {u.target for u in decode.state_updates}


def test_hybrid_program_generates_like_the_model(hybrid_program: Any, tmp_path: Path) -> None:
    from tests.models.hybrid_lm import build_hybrid_lm
    from torch_ir.runtime.generation import verify_generation
    from torch_ir.runtime.program import ProgramRunner

    hybrid_program.save(tmp_path / "hybrid.json")
    ir = load_ir(tmp_path / "hybrid.json")
    real = build_hybrid_lm("cpu")
    prompt = torch.randint(3, 64, (1, 6), generator=torch.Generator().manual_seed(0))
    ok, report = verify_generation(ir, real, steps=8, prompt=prompt)
    assert ok, str(report)
    tokens = torch.tensor([prompt[0].tolist() + [s.token_eager for s in report.steps[:-1]]])
    runner = ProgramRunner(ir, real)
    with torch.no_grad():  # against the whole sequence without a cache: the states carry the past
        logits = [runner("prefill", input_ids=prompt, cache_position=torch.arange(6))[0, -1]]
        for position in range(6, tokens.shape[1]):
            token = tokens[:, position : position + 1]
            logits.append(runner("decode", input_ids=token, cache_position=torch.tensor([position]))[0, -1])
        torch.testing.assert_close(torch.stack(logits), real(tokens).logits[0, 5:], rtol=1e-4, atol=1e-5)


def test_a_model_that_numbers_positions_from_the_cache_length_generates_like_the_model(tmp_path: Path) -> None:
    """OPT's learned positions: the program gives the model its positions, so none is read from the cache."""
    from tests.models.positions_lm import build_positions_lm
    from torch_ir import extract_llm
    from torch_ir.runtime.generation import verify_generation

    extract_llm(build_positions_lm(), max_cache_len=16).save(tmp_path / "positions.json")
    ok, report = verify_generation(load_ir(tmp_path / "positions.json"), build_positions_lm("cpu"), steps=6)
    assert ok, str(report)


def test_a_prompt_length_branch_narrows_prefill_with_a_warning() -> None:
    from tests.models.hybrid_lm import build_hybrid_lm
    from torch_ir import extract_llm

    # a convolution of 3 taps: the cache pads prompts shorter than 3, a branch on the prompt length
    with pytest.warns(TorchIRWarning, match="prefill takes prompts of 3 to 16 tokens, not 2 to 16"):
        ir = extract_llm(build_hybrid_lm(conv_kernel=3), max_cache_len=16, pipeline="none")
    assert ir.entry("prefill").symbols["seq"].min == 3


def test_a_cache_layer_that_makes_no_state_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.models import hybrid_lm
    from torch_ir import extract_llm

    def without_cache(self: Any, x: torch.Tensor, cache: Any) -> torch.Tensor:
        return self.out_proj(self.in_proj(x).chunk(2, dim=-1)[0])

    monkeypatch.setattr(hybrid_lm.RecurrentMixer, "forward", without_cache)
    with pytest.raises(ExportError, match=r"cache layers \[0, 2\] \(LinearAttentionLayer\) made no state"):
        extract_llm(hybrid_lm.build_hybrid_lm(), max_cache_len=16)


# ------------------------------------------------------------------ 6. pinned sizes


def test_a_size_pinned_by_the_trace_is_reported_with_the_model_line() -> None:
    with pytest.warns(TorchIRWarning, match=r"the graph runs only when offset == 3 \(.*pinned.py:\d+") as record:
        ir = _extract("fixed_window_mask")
    assert "offset.item() + x.shape[0]" in str(record[0].message)
    _run_against_eager("fixed_window_mask", ir)  # with the pinned value it runs
    x = torch.randn(5, 4)
    with pytest.raises(Exception, match="Runtime assertion failed"):
        Interpreter(ir, get_model("fixed_window_mask").build_real())(x, torch.tensor(2))


def test_a_range_no_value_meets_says_so() -> None:
    never = PinnedSize("offset + n", 8, 7, None)
    assert not never.satisfiable and "which no value can" in never.describe()
    assert PinnedSize("offset", 3, 3, {"file": "m.py", "line": 4, "code": "n = x.item()"}).describe() == (
        "offset == 3 (m.py:4: `n = x.item()`)"
    )


def test_an_llm_program_pinned_to_one_length_is_refused() -> None:
    from torch_ir import extract_llm

    model = build_causal_lm("falcon", "meta", alibi=True)  # its ALiBi mask spans cache_position[0] + seq
    with pytest.raises(ExportError, match=r"prefill runs only when cache_position\[0\] \+ seq == 16") as info:
        extract_llm(model, max_cache_len=16)
    assert "decode runs only when cache_position[0] + 1 == 16" in str(info.value)
    assert "modeling_falcon.py" in str(info.value) and info.value.cause == "model"


# ------------------------------------------------------------------ 7. export failures


class _MismatchedLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.a(x)
        return self.b(hidden)


class _Branchy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return x - 1


def test_bad_example_inputs_are_named() -> None:
    case = get_model("two_tower")
    with pytest.raises(ExportError) as info:
        extract_ir(case.build_meta(), (torch.randn(2, 9, device="meta"), torch.randn(2, 12, device="meta")))
    text = str(info.value)
    assert info.value.cause == "inputs" and "first operation on input `a` fails" in text
    assert "RuntimeError: a and b must have same reduction dim" in text and "multi_io.py" in text


def test_an_error_in_the_model_is_not_blamed_on_the_inputs() -> None:
    with pytest.raises(ExportError) as info:
        extract_ir(_MismatchedLayers(), (torch.randn(2, 4),))
    text = str(info.value)
    assert info.value.cause == "model" and "`return self.b(hidden)`" in text
    assert "not in the example inputs" in text and "check that the example inputs" not in text


def test_a_construct_export_cannot_trace_is_called_so() -> None:
    with pytest.raises(ExportError) as info:
        extract_ir(_Branchy(), (torch.randn(3),))
    assert info.value.cause == "unsupported" and "torch.cond" in str(info.value)
    assert "`if x.sum() > 0:`" in str(info.value)


def test_a_dynamic_shapes_spec_that_does_not_fit_is_called_so() -> None:
    from torch.export import Dim

    class Fixed(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.view(4, 3)

    with pytest.raises(ExportError) as info:
        extract_ir(Fixed(), (torch.randn(4, 3),), dynamic_shapes=({0: Dim("batch", min=2, max=8)},))
    assert info.value.cause == "dynamic_shapes"


def test_a_transformers_error_in_an_llm_program_is_the_models() -> None:
    """MLA attention: transformers sizes the static cache for one head dim, the values have another."""
    from torch_ir import extract_llm

    with pytest.raises(ExportError) as info:
        extract_llm(build_causal_lm("deepseek_v3", "meta"), max_cache_len=16)
    text = str(info.value)
    assert info.value.cause == "model" and "transformers/cache_utils.py" in text and "index_copy" in text
    assert "not in the inputs torch-ir built" in text


def test_the_cli_prints_the_cause_in_a_few_lines(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "bug.py"
    model.write_text(
        "import torch\n\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.a, self.b = torch.nn.Linear(3, 8), torch.nn.Linear(6, 2)\n\n"
        "    def forward(self, x):\n"
        "        h = self.a(x)\n"
        "        return self.b(h)\n"
    )
    assert main(["extract", f"{model}:Net", "--input", "2x3:float32", "-o", "-"]) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 8, err
    assert "Cause (model)" in err and "bug.py:10 (forward): `return self.b(h)`" in err


# ------------------------------------------------------------------ the sweep script


def _sweep_module() -> Any:
    spec = importlib.util.spec_from_file_location("sweep", ROOT / "scripts" / "sweep.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_runs_a_control_flow_case_and_writes_its_table(tmp_path: Path) -> None:
    sweep = _sweep_module()
    assert "while_loop: Python-int carry" in sweep.control_flow_cases()
    assert "llama" in sweep.llm_cases() and "jamba" in sweep.llm_cases()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sweep.run_control_flow_case("while_loop: Python-int carry")
    assert result["status"] == "pass", result
    page = tmp_path / "models.md"
    page.write_text("# Models\n\nintro\n")
    results = {
        "llm:llama": {"status": "pass", "detail": "", "seconds": 3.0},
        "llm:broken": {"status": "upstream", "detail": "torch.export: RuntimeError: x | y", "seconds": 1.0},
        "cf:while_loop: Python-int carry": result,
    }
    sweep.write_table(results, page)
    sweep.write_table(results, page)  # rewriting replaces the generated section
    text = page.read_text()
    assert text.count(sweep.BEGIN) == 1 and text.startswith("# Models\n\nintro\n")
    assert f"torch {torch.__version__}, transformers {transformers.__version__}" in text
    assert "Causal LMs: 2 cases, 1 pass, 1 upstream." in text and "Control flow: 1 cases, 1 pass." in text
    assert "| `broken` | upstream |  | torch.export: RuntimeError: x \\| y |" in text.replace("1.0 s", "")
    assert "partial sweep" not in text
    sweep.write_table(results, page, only="llama,while")
    assert "A partial sweep (`--only llama,while`) of " in page.read_text()
    json.dumps(results)
