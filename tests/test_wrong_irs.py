"""Wrong IRs that verification must FAIL with its default options, on the command line and in Python.

Each wrong IR comes from a plugin pass of ``tests/wrong_passes.py`` (as a user writes one) or is crafted
here; each is wrong in a way a weak verification lets through (all-equal token ids, identity norms, zero
biases, the test input's seed or batch size, a branch the input never takes, ops that alias the weights
without saying so). Every case has its honest control: the unchanged IR passes the same check.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.transformers_models import TINY
from torch_ir import Graph, RunLimitError, WeightError, extract_ir, load_ir
from torch_ir.cli import main
from torch_ir.frontends.inputs import random_input
from torch_ir.frontends.model_specs import resolve_model
from torch_ir.ops import op_info
from torch_ir.runtime.verifier import verify_ir, verify_ir_with_state_dict
from torch_ir.runtime.worker import isolation

pytest.importorskip("transformers")

PLUGIN = "tests.wrong_passes"
LLAMA = ["hf:llama", "--config", ",".join(f"{k}={v}" for k, v in TINY["llama"].items()), "--input", "1x16:int64"]
GPT2 = ["hf:gpt2", "--config", ",".join(f"{k}={v}" for k, v in TINY["gpt2"].items()), "--input", "1x16:int64"]
GPT = ["zoo:gpt"]
RESNET = ["zoo:resnet"]
MODELS = {"gpt": GPT, "resnet": RESNET, "llama": LLAMA, "gpt2": GPT2}


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The IR of each model, extracted as it should be."""
    folder = tmp_path_factory.mktemp("honest")
    paths = {}
    for name, spec in MODELS.items():
        paths[name] = folder / f"{name}.json"
        assert main(["extract", *spec, "-o", str(paths[name]), "-q"]) == 0
    return paths


def _wrong(source: Path, pipeline: str, out: Path) -> Path:
    assert main(["opt", str(source), "-p", pipeline, "--plugin", PLUGIN, "-o", str(out)]) == 0
    return out


def _verify(path: Path, spec: list[str], capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, str]:
    model, *rest = spec
    code = main(["verify", str(path), "--model", model, *rest, *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _honest_and_wrong(spec: list[str], pipeline: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    """Extract ``spec``'s model, check that its IR passes, and return the IR ``pipeline`` makes of it."""
    honest = tmp_path / "honest.json"
    assert main(["extract", spec[0], "-o", str(honest), "-q"]) == 0
    code, out = _verify(honest, spec, capsys)
    assert code == 0, out
    return _wrong(honest, pipeline, tmp_path / "wrong.json")


def _python_model(spec: list[str]) -> tuple[torch.nn.Module, tuple[Any, ...], dict[str, Any]]:
    """The model as a Python user builds it: the spec's default (not informative) initialization, seed 0,
    and its example inputs, with the input shape the IR was extracted with."""
    from torch_ir.frontends.model_specs import parse_config_overrides

    overrides = parse_config_overrides(spec[2]) if len(spec) > 2 and spec[1] == "--config" else {}
    torch.manual_seed(0)
    bundle = resolve_model(spec[0], device="cpu", config_overrides=overrides)
    args, kwargs = bundle.args, bundle.kwargs
    if "--input" in spec:  # the hf examples have 128 tokens; these IRs were extracted with 16
        args = (args[0][:, :16],)
    return bundle.model, args, kwargs


WRONG_PASSES = [
    ("resnet", "wrong-drop-modules{classes=BatchNorm2d}"),
    ("gpt", "wrong-drop-modules{classes=LayerNorm}"),
    ("llama", "wrong-drop-modules{classes=LlamaRMSNorm}"),
    ("llama", "wrong-attention-as-value"),
    ("gpt", "wrong-fill-input{input=ids}"),
    ("gpt", "wrong-clamp-ids{high=64}"),
    ("gpt2", "wrong-drop-biases"),
    ("gpt2", "wrong-drop-modules{classes=LayerNorm}"),
]


@pytest.mark.parametrize(("model", "pipeline"), WRONG_PASSES)
def test_wrong_pass_fails_on_the_command_line_and_in_python(
    model: str, pipeline: str, honest: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spec = MODELS[model]
    wrong = _wrong(honest[model], pipeline, tmp_path / "wrong.json")
    code, out = _verify(wrong, spec, capsys)
    assert code == 1 and "FAILED" in out, out
    real, args, kwargs = _python_model(spec)
    ok, report = verify_ir(load_ir(wrong), real, args, kwargs)
    assert not ok, str(report)


@pytest.mark.parametrize("model", list(MODELS))
def test_honest_ir_passes_the_same_checks(model: str, honest: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    spec = MODELS[model]
    code, out = _verify(honest[model], spec, capsys)
    assert code == 0 and "PASSED" in out, out
    real, args, kwargs = _python_model(spec)
    ok, report = verify_ir(load_ir(honest[model]), real, args, kwargs)
    assert ok, str(report)
    assert [t.index for t in report.trials] == [0, 1, 2]
    assert "redrawn" in report.trials[1].weights  # norms and biases at their initial values


@pytest.mark.parametrize(
    "op",
    [
        "aten._unsafe_view.default",
        "aten.type_as.default",
        "aten.lift.default",
        "detach-chain",
        "inductor._reinterpret_tensor.default",
    ],
)
def test_weights_zeroed_through_an_unannotated_alias_fail_and_name_the_node(
    op: str, honest: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    if op.startswith("inductor."):
        pytest.importorskip("torch._inductor")
    wrong = _wrong(honest["gpt"], f"wrong-zero-weights{{op={op}}}", tmp_path / "zeroed.json")
    view = "aten.detach.default" if op == "detach-chain" else op
    # from a file, the first op off the allow-list is refused (the view, or aten.zero_ after an allowed view)
    refused = "aten.zero_.default" if op_info(view).untrusted_ok else view
    code, out = _verify(wrong, GPT, capsys)
    assert code == 2 and f"({refused}) is refused" in out and "PASSED" not in out, out
    namespace, name = view.split(".")[:2]
    allowed = ["aten::zero_", *([f"{namespace}::{name}"] if refused == view else [])]
    flags = [word for name in allowed for word in ("--allow-op", name)]
    for where in ([], ["--in-process"]):  # allowed, the write is found in the worker and in this process
        code, out = _verify(wrong, GPT, capsys, *flags, *where)
        assert code == 1, out
        assert "weight @tok.weight" in out and "the IR wrote into it: node zero_" in out, out
    real, args, kwargs = _python_model(GPT)
    before = {k: v.clone() for k, v in real.state_dict().items()}
    with pytest.raises(RunLimitError, match=refused.split(".")[1]):
        verify_ir(load_ir(wrong), real, args, kwargs)
    with isolation(allow_ops=tuple(allowed)):
        ok, report = verify_ir(load_ir(wrong), real, args, kwargs)
    assert not ok
    written = [o for o in report.outputs if o.name.startswith("weight @")]
    assert written and all("zero_" in o.problem for o in written), str(report)
    assert all(torch.equal(v, real.state_dict()[k]) for k, v in before.items())  # the caller's weights


def test_an_ir_that_writes_into_its_input_fails_naming_the_node(tmp_path: Path) -> None:
    model = torch.nn.Linear(8, 4).eval()
    x = torch.randn(2, 8)
    ir = extract_ir(model, (x,))
    graph = ir.graph
    first = graph.nodes[0]
    view = graph.create_op("aten._unsafe_view.default", graph.inputs[0], [16], before=first).output
    graph.create_op("aten.fill_.Scalar", view, 0.0, before=first)
    kept = x.clone()
    ok, report = verify_ir(ir, model, (x,))
    assert not ok
    assert any(o.name == "input %input" and "fill_" in o.problem for o in report.outputs), str(report)
    assert torch.equal(x, kept)
    path = tmp_path / "writes_input.json"  # read from a file, it runs in a worker: the write is found there
    ir.save(path)
    with isolation(allow_ops=("aten::fill_",)):
        ok, report = verify_ir(load_ir(path), model, (x,))
    assert not ok
    assert any(o.name == "input %input" and "node fill_" in o.problem for o in report.outputs), str(report)
    assert torch.equal(x, kept)


def _constant_answer(model: torch.nn.Module, ids: torch.Tensor) -> Any:
    """An IR that returns ``model(ids)`` as a stored constant, whatever its input."""
    ir = extract_ir(model, (ids,))
    graph = ir.graph
    with torch.no_grad():
        answer = model(ids).contiguous()
    data = {"encoding": "base64", "bytes": base64.b64encode(answer.numpy().tobytes()).decode()}
    const = graph.add_weight("answer", graph.outputs[0].type, kind="constant", persistent=False, data=data)
    copy = graph.create_op("aten.clone.default", const)
    graph.set_outputs([copy.output])
    for node in reversed([n for n in graph.nodes if n is not copy]):
        if not any(graph.users(v) or graph.is_live(v) for v in node.outputs):
            graph.erase(node)
    return ir


def test_a_constant_answer_for_the_first_inputs_fails_from_the_second_trial(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    bundle = resolve_model("zoo:gpt", device="cpu")
    model = bundle.model
    from torch_ir.runtime.informative_weights import informative_weights

    informative_weights(model, 0)
    # what the command line draws for trial 0 with --seed 0: ids in the embedding's 1024 rows
    first = random_input((1, 32), "int64", torch.Generator().manual_seed(0), value_range=(0, 1024))
    ir = _constant_answer(model, first)
    path = tmp_path / "constant.json"
    ir.save(path)
    code, out = _verify(path, GPT, capsys)
    assert code == 1, out
    assert "trial 0 (seed 0): ok" in out and "trial 1 (seed 1): FAIL" in out, out
    ok, report = verify_ir(ir, model, (first,))
    assert not ok and report.trials[0].passed and not report.trials[1].passed
    ok, _ = verify_ir(ir, model, (first,), trials=1)
    assert ok  # one input cannot tell a constant from a computation: what the trials are for


def test_swapped_cond_branches_fail(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = ["tests.wrong_models:cond_router", "--input", "2x8:float32"]
    wrong = _honest_and_wrong(spec, "wrong-swap-cond-branches", tmp_path, capsys)
    code, out = _verify(wrong, spec, capsys)
    assert code == 1, out
    from tests.wrong_models import cond_router

    model, args = cond_router()
    ok, report = verify_ir(load_ir(wrong), model.eval(), args)
    assert not ok, str(report)


def test_a_branch_no_input_takes_is_named_in_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = ["tests.wrong_models:always_true", "--input", "2x8:float32"]
    honest = tmp_path / "always.json"
    assert main(["extract", spec[0], "-o", str(honest), "-q"]) == 0
    doc = json.loads(honest.read_text())
    cond = next(n for n in doc["module"]["functions"][0]["graph"]["nodes"] if n["op"] == "higher_order.cond")
    false = cond["regions"][1]
    mul = next(n for n in false["nodes"] if n["op"] == "aten.mul.Tensor")
    mul["attrs"]["other"] = 3.0  # wrong, where no input goes
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    code, out = _verify(broken, spec, capsys)
    assert code == 0, out  # verification cannot see what never runs...
    name = cond["name"]
    assert f"warning: the false branch of {name} was never taken: give inputs that reach it" in out, out
    assert f"{name}/true 3/3" in out and f"{name}/false 0/3" in out
    from tests.wrong_models import always_true

    model, args = always_true()
    ok, report = verify_ir(load_ir(broken), model.eval(), args)
    assert ok and report.coverage == {f"{name}/true": 3, f"{name}/false": 0}
    assert any("false branch" in w for w in report.warnings)


def test_swapped_outputs_fail() -> None:
    from tests.wrong_models import twin_heads
    from tests.wrong_passes import SwapOutputs
    from torch_ir.passes.base import PassContext

    model, args = twin_heads()
    ir = extract_ir(model.eval(), args)
    SwapOutputs().run(ir.graph, PassContext())
    ok, report = verify_ir(ir, model, args)
    assert not ok and [o.passed for o in report.outputs] == [False, False]


def test_a_dropped_state_update_fails() -> None:
    from tests.models import get_model
    from tests.wrong_passes import DropStateUpdates
    from torch_ir.passes.base import PassContext

    case = get_model("buffer_counter")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0])
    DropStateUpdates().run(ir.graph, PassContext())
    ok, report = verify_ir(ir, case.build_real(), case.inputs("cpu")[0])
    failed = {o.name: o.problem for o in report.outputs if not o.passed}
    assert not ok and set(failed) == {"state @count", "state @total"}, str(report)
    assert "no state update" in failed["state @total"]


def test_an_ir_right_only_for_the_test_batch_size_fails() -> None:
    from tests.models import get_model
    from tests.wrong_passes import StaticBatch
    from torch_ir.passes.base import PassContext

    case = get_model("dynamic_batch")
    args, _ = case.inputs("cpu")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0], dynamic_shapes=case.dynamic_shapes)
    model = case.build_real()
    assert verify_ir(ir, model, args)[0]
    StaticBatch(size=args[0].shape[0]).run(ir.graph, PassContext())
    ok, report = verify_ir(ir, model, args)
    assert not ok and report.trials[0].passed, str(report)
    assert "x float32[4, 12]" in report.trials[0].inputs and "[4, 12]" not in report.trials[-1].inputs


def test_a_relu_dropped_for_positive_test_inputs_fails() -> None:
    from tests.wrong_models import ReluFirst
    from tests.wrong_passes import ReluAsIdentity
    from torch_ir.passes.base import PassContext

    model = ReluFirst().eval()
    x = torch.rand(3, 8) + 0.5  # every test value positive: relu is the identity on it
    ir = extract_ir(model, (x,))
    ReluAsIdentity().run(ir.graph, PassContext())
    ok, report = verify_ir(ir, model, (x,))
    assert not ok and report.trials[0].passed, str(report)


def test_an_ignored_mask_fails(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = ["tests.wrong_models:masked_mean", "--input", "2x5x8:float32", "--input", "mask=2x5:bool"]
    wrong = _honest_and_wrong(spec, "wrong-fill-input{input=mask,fill=1}", tmp_path, capsys)
    code, out = _verify(wrong, spec, capsys)
    assert code == 1, out
    from tests.wrong_models import masked_mean

    model, args = masked_mean()  # its example mask keeps every row: trial 0 cannot tell
    ok, report = verify_ir(load_ir(wrong), model.eval(), args)
    assert not ok and report.trials[0].passed, str(report)


def test_a_parameter_relabelled_as_a_buffer_must_still_come_from_the_weights(
    honest: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from safetensors.torch import save_file

    wrong = _wrong(honest["gpt"], "wrong-relabel-weight{weight=ln_f.weight}", tmp_path / "relabelled.json")
    torch.manual_seed(0)
    model = resolve_model("zoo:gpt", device="cpu").model
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k not in ("ln_f.weight", "head.weight")}
    weights = tmp_path / "w.safetensors"
    save_file(state, str(weights))
    code, out = _verify(wrong, GPT, capsys, "--weights", str(weights))
    assert code == 2 and "ln_f.weight (the model's parameter; the IR calls it a non-persistent buffer)" in out, out
    with pytest.raises(WeightError, match=r"ln_f\.weight"):
        verify_ir_with_state_dict(load_ir(wrong), state, model, (torch.zeros(1, 32, dtype=torch.long),))
    # the model's own parameter a file lacks is an error even where the IR does not read it
    code, out = _verify(honest["gpt"], GPT, capsys, "--weights", str(weights))
    assert code == 2 and "ln_f.weight" in out, out


def test_a_parameter_baked_into_the_ir_under_another_name_is_refused() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
    x = torch.randn(2, 16)
    ir = extract_ir(model, (x,))
    graph = ir.graph
    weight = graph.weight("0.weight")
    graph.rename_weight(weight, "folded_constant")
    weight.kind, weight.persistent, weight.data = "constant", False, model[0].weight.detach().tolist()
    with pytest.raises(WeightError, match=r"@folded_constant = 0\.weight"):
        verify_ir_with_state_dict(ir, model.state_dict(), model, (x,))
    with pytest.raises(WeightError, match=r"@folded_constant = 0\.weight"):
        verify_ir(ir, model, (x,))  # the model's own weights: still not read


def test_a_state_update_right_only_from_the_initial_state_fails() -> None:
    from tests.models import get_model

    case = get_model("buffer_counter")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0])
    graph = ir.graph
    ones = graph.create_op("aten.ones_like.default", graph.weight("count"))  # count = 1: right on the first call
    updates = graph.state_updates
    next(u for u in updates if u.target == "count").value = ones.output
    graph.set_state_updates(updates)
    model = case.build_real()
    assert verify_ir(ir, model, case.inputs("cpu")[0], trials=1)[0]
    ok, report = verify_ir(ir, model, case.inputs("cpu")[0])
    assert not ok and report.trials[0].passed, str(report)
    assert [o.name for o in report.outputs if not o.passed][:1] in (["output"], ["state @count"])


def test_inputs_that_do_not_fit_the_ir_exit_2(honest: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    code, out = _verify(honest["gpt"], GPT, capsys, "--input", "ids:1x32:int64:0..5000")
    assert code == 2 and "outside 0..1023" in out and "embedding" in out, out
    code, out = _verify(honest["gpt"], GPT, capsys, "--input", "1x16:int64")
    assert code == 2 and "expected shape [1, 32]" in out, out
    code, out = _verify(honest["gpt"], GPT, capsys, "--input", "1x32:int32")
    assert code == 2 and "expected dtype int64" in out, out


OUTLINE = "annotate-shapes,canonicalize,outline-repeated-blocks"
"""Extraction that makes each decoder layer a call of one private function (``llama_decoder_layer``)."""

BODY = "llama_decoder_layer"


@pytest.fixture(scope="module")
def outlined_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("outlined") / "llama.json"
    assert main(["extract", *LLAMA, "-p", OUTLINE, "-o", str(path), "-q"]) == 0
    ir = load_ir(path)
    assert not ir.functions[BODY].public and sum(n.op_type == "func.call" for n in ir.graph.nodes) == 2
    return path


def _structure(graph: Graph) -> list[Any]:
    """What a graph computes, by name: each node's op, operands and results, then the outputs."""
    nodes = [(n.op_type, [v.name for v in n.inputs], [v.name for v in n.outputs]) for n in graph.nodes]
    return [*nodes, [v.name for v in graph.outputs]]


@pytest.mark.parametrize(
    "pipeline",
    [
        f"wrong-drop-modules{{classes=LlamaRMSNorm,function={BODY}}}",
        "wrong-attention-as-value",
        f"wrong-drop-modules{{classes=LlamaMLP,function={BODY}}}",
    ],
)
def test_a_wrong_pass_inside_a_called_function_fails(
    pipeline: str, outlined_llama: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, out = _verify(outlined_llama, LLAMA, capsys)
    assert code == 0 and "PASSED" in out, out
    wrong = _wrong(outlined_llama, pipeline, tmp_path / "wrong.json")
    honest_ir, wrong_ir = load_ir(outlined_llama), load_ir(wrong)
    assert _structure(honest_ir.graph) == _structure(wrong_ir.graph)  # the entry is untouched: only the body is wrong
    assert _structure(honest_ir.functions[BODY].graph) != _structure(wrong_ir.functions[BODY].graph)
    code, out = _verify(wrong, LLAMA, capsys)
    assert code == 1 and "FAILED" in out, out
    real, args, kwargs = _python_model(LLAMA)
    ok, report = verify_ir(wrong_ir, real, args, kwargs)
    assert not ok, str(report)


def test_a_called_function_that_zeroes_the_weights_it_is_passed_fails(
    outlined_llama: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    wrong = _wrong(outlined_llama, f"wrong-zero-weights{{function={BODY}}}", tmp_path / "zeroed.json")
    code, out = _verify(wrong, LLAMA, capsys)  # from a file, aten.zero_ is off the allow-list: no verdict
    assert code == 2 and "(aten.zero_.default) is refused" in out and "PASSED" not in out, out
    for where in ([], ["--in-process"]):  # allowed, the write is found in the worker and in this process
        code, out = _verify(wrong, LLAMA, capsys, "--allow-op", "aten::zero_", *where)
        assert code == 1 and f"the IR wrote into it: node model.layers.0 (func.call of {BODY})" in out, out
    real, args, kwargs = _python_model(LLAMA)
    before = {k: v.clone() for k, v in real.state_dict().items()}
    with pytest.raises(RunLimitError, match="zero_"):
        verify_ir(load_ir(wrong), real, args, kwargs)
    with isolation(allow_ops=("aten::zero_",)):
        ok, report = verify_ir(load_ir(wrong), real, args, kwargs)
    assert not ok and any(o.name.startswith("weight @") for o in report.outputs), str(report)
    assert all(torch.equal(v, real.state_dict()[k]) for k, v in before.items())


@pytest.fixture(scope="module")
def llama_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("program") / "llm.json"
    cache = ["--kv-cache", "static", "--max-cache-len", "32"]
    assert main(["extract", *LLAMA[:3], *cache, "-o", str(path), "-q"]) == 0
    return path


def _generate(path: Path, capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, str]:
    code = main(["verify", str(path), "--model", *LLAMA[:3], "--generate", "4", *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_prefill_that_never_writes_the_cache_fails(
    llama_program: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from tests.transformers_models import build_causal_lm
    from torch_ir.runtime.generation import verify_generation

    assert _generate(llama_program, capsys)[0] == 0
    ir = load_ir(llama_program)
    ir.entry("prefill").set_state_updates([])
    path = tmp_path / "no_cache.json"
    ir.save(path)
    code, out = _generate(path, capsys)
    assert code == 1 and "first divergence: step 1 (decode)" in out, out
    ok, report = verify_generation(ir, build_causal_lm("llama", "cpu"), steps=4)
    assert not ok and report.first_failure is not None and report.first_failure.step == 1


def test_a_prefill_that_zeroes_the_weights_and_never_writes_the_cache_fails(
    llama_program: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from tests.transformers_models import build_causal_lm
    from tests.wrong_passes import ZeroWeights
    from torch_ir.passes.base import PassContext
    from torch_ir.runtime.generation import verify_generation

    ir = load_ir(llama_program)
    prefill = ir.entry("prefill")
    ZeroWeights().run(prefill, PassContext())
    prefill.set_state_updates([])
    path = tmp_path / "poisoned.json"
    ir.save(path)
    code, out = _generate(path, capsys)  # from a file, aten.zero_ is off the allow-list: no verdict
    assert code == 2 and "aten.zero_.default) is refused" in out, out
    for where in ([], ["--in-process"]):  # allowed, the write is found in the worker and in this process
        code, out = _generate(path, capsys, "--allow-op", "aten::zero_", *where)
        assert code == 1 and "the program wrote into" in out and "step 0 (prefill): node zero_" in out, out
    real = build_causal_lm("llama", "cpu")
    before = {k: v.clone() for k, v in real.state_dict().items()}
    with pytest.raises(RunLimitError, match="zero_"):
        verify_generation(ir, real, steps=4)
    with isolation(allow_ops=("aten::zero_",)):  # read from a file: runs in a worker
        ok, report = verify_generation(ir, real, steps=4)
    assert not ok and "zero_" in report.error, str(report)
    assert all(torch.equal(v, real.state_dict()[k]) for k, v in before.items())


def test_a_decode_without_its_norms_fails(llama_program: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.transformers_models import build_causal_lm
    from tests.wrong_passes import DropModules
    from torch_ir.passes.base import PassContext
    from torch_ir.runtime.generation import verify_generation

    ir = load_ir(llama_program)
    assert DropModules(classes="LlamaRMSNorm").run(ir.entry("decode"), PassContext()).modified
    path = tmp_path / "no_norm.json"
    ir.save(path)
    code, out = _generate(path, capsys)
    assert code == 1 and "step 1 (decode)" in out, out
    ok, report = verify_generation(ir, build_causal_lm("llama", "cpu"), steps=4)
    assert not ok, str(report)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_programs_generate_like_eager(dtype: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = LLAMA[2] + f",dtype={dtype}"
    path = tmp_path / f"llm_{dtype}.json"
    cache = ["--kv-cache", "static", "--max-cache-len", "32"]
    assert main(["extract", "hf:llama", "--config", config, *cache, "-o", str(path), "-q"]) == 0
    code = main(["verify", str(path), "--model", "hf:llama", "--config", config, "--generate", "8", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["steps"][0]["rtol"] == (1.6e-2 if dtype == "bfloat16" else 1e-2)
    assert len(report["trials"]) == 3 and all(t["passed"] for t in report["trials"])


def test_a_bfloat16_mixture_of_experts_program_generates_like_eager() -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    from torch_ir import extract_llm
    from torch_ir.runtime.generation import verify_generation

    config = AutoConfig.for_model("olmoe", **{**TINY["llama"], "num_experts": 4, "num_experts_per_tok": 2})

    def build(device: str) -> torch.nn.Module:
        torch.manual_seed(0)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config)
        return model.to(torch.bfloat16).eval()

    ir = extract_llm(build("meta"), max_cache_len=24, max_prefill_len=12)
    ok, report = verify_generation(ir, build("cpu"), steps=8)
    assert ok, str(report)
