"""Numeric verification: reports, tolerances, keyword inputs, first-divergence localization, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.models import get_model
from torch_ir import extract_ir, load_ir, verify_ir, verify_ir_with_state_dict
from torch_ir.cli import main
from torch_ir.runtime.verifier import compare_tensors, tolerance


class SubModel(torch.nn.Module):
    """linear -> sub -> relu -> linear, so swapping sub's operands changes the result."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 8)
        self.fc2 = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        d = h - x * 0.5
        return self.fc2(torch.relu(d))


def _sub_ir():
    with torch.device("meta"):
        meta = SubModel()
    return extract_ir(meta.eval(), (torch.randn(2, 8, device="meta"),))


def test_readme_example_works() -> None:
    torch.manual_seed(0)
    ir = _sub_ir()
    model = SubModel().eval()
    x = torch.randn(2, 8)
    is_valid, report = verify_ir_with_state_dict(
        ir=ir, state_dict=model.state_dict(), original_model=model, test_inputs=(x,)
    )
    assert is_valid and report.passed
    text = str(report)
    assert "PASSED" in text and "float32" in text and "[2, 4]" in text
    data = report.to_dict()
    assert data["passed"] and data["outputs"][0]["shape"] == [2, 4] and data["outputs"][0]["max_abs"] == 0.0


def test_swapped_sub_operands_fail_and_are_localized(tmp_path: Path) -> None:
    ir = _sub_ir()
    sub = next(n for n in ir.nodes if n.op_type == "aten.sub.Tensor")
    ir.graph.set_args(sub, list(reversed(sub.args)))
    ir.save(tmp_path / "broken.json")
    broken = load_ir(tmp_path / "broken.json")
    model = SubModel().eval()
    is_valid, report = verify_ir(broken, model, (torch.randn(2, 8),))
    assert not is_valid and not report.outputs[0].passed
    assert report.divergence is not None
    assert report.divergence.node == sub.name and report.divergence.op_type == "aten.sub.Tensor"
    assert report.divergence.source and report.divergence.source["line"] > 0
    assert report.divergence.comparison.max_abs > 0
    text = str(report)
    assert "FAILED" in text and f"first divergence: node {sub.name} (aten.sub.Tensor)" in text
    assert "test_verify.py" in text


def test_tolerances_by_dtype_and_overrides() -> None:
    assert tolerance("float32") == (1e-4, 1e-5)
    assert tolerance("bfloat16")[0] > tolerance("float32")[0]
    assert tolerance("int64") == (0.0, 0.0)
    assert tolerance("float32", rtol=0.5) == (0.5, 1e-5)
    a = torch.ones(3)
    assert not compare_tensors(a + 1e-3, a).passed
    assert compare_tensors(a + 1e-3, a, atol=1e-2).passed
    cmp = compare_tensors(a * 1.5, a)
    assert cmp.max_abs == pytest.approx(0.5) and cmp.max_rel == pytest.approx(0.5)
    assert not compare_tensors(torch.ones(2), a).passed
    assert compare_tensors(torch.tensor([float("inf"), 1.0]), torch.tensor([float("inf"), 1.0])).passed


def test_output_error_within_overridden_tolerance_passes() -> None:
    ir = _sub_ir()
    sub = next(n for n in ir.nodes if n.op_type == "aten.sub.Tensor")
    ir.graph.set_args(sub, list(reversed(sub.args)))
    model = SubModel().eval()
    ok, _ = verify_ir(ir, model, (torch.randn(2, 8),), rtol=1e9, atol=1e9)
    assert ok


def test_keyword_inputs_are_verified() -> None:
    case = get_model("kwargs_dict")
    args, kwargs = case.inputs("meta")
    ir = extract_ir(case.build_meta(), args, example_kwargs=kwargs)
    real = case.build_real()
    args, kwargs = case.inputs("cpu")
    ok, report = verify_ir_with_state_dict(
        ir=ir, state_dict=real.state_dict(), original_model=real, test_inputs=args, test_kwargs=kwargs
    )
    assert ok, str(report)
    assert [o.name for o in report.outputs] == ["logits", "aux[0]", "aux[1]"]


def test_cli_verify(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from torch_ir.frontends.model_specs import resolve_model

    bundle = resolve_model("zoo:gpt")
    ir = extract_ir(bundle.model, bundle.args, example_kwargs=bundle.kwargs)
    path = tmp_path / "gpt.json"
    ir.save(path)
    assert main(["verify", str(path), "--model", "zoo:gpt"]) == 0
    assert "PASSED" in capsys.readouterr().out

    first = next(n for n in ir.nodes if n.op_type == "aten.embedding.default")
    relu = ir.graph.create_node(
        "aten.relu.default", [first.outputs[0]], {}, [first.outputs[0].type], name="injected", after=first
    )
    for user in ir.graph.users(first.outputs[0]):
        if user is not relu:
            ir.graph.set_args(user, [relu.outputs[0] if a is first.outputs[0] else a for a in user.args])
    ir.save(path)
    assert main(["verify", str(path), "--model", "zoo:gpt"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "first divergence" in out


def test_cli_verify_with_weights_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from safetensors.torch import save_file

    from torch_ir.frontends.model_specs import resolve_model

    bundle = resolve_model("zoo:gpt")
    ir = extract_ir(bundle.model, bundle.args)
    ir.save(tmp_path / "r.json")
    torch.manual_seed(3)
    real = resolve_model("zoo:gpt", device="cpu").model
    save_file({k: v.clone() for k, v in real.state_dict().items()}, str(tmp_path / "w.safetensors"))
    code = main(
        ["verify", str(tmp_path / "r.json"), "--model", "zoo:gpt", "--weights", str(tmp_path / "w.safetensors")]
    )
    assert code == 0, capsys.readouterr().out


def test_weights_removed_as_unused_are_expected_but_stray_keys_are_not() -> None:
    from torch_ir import WeightError

    case = get_model("small_cnn")
    model = case.build_real()
    args, _ = case.inputs("cpu")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0])
    unused = ir.graph.meta["unused_weights"]
    assert "stem.1.num_batches_tracked" in unused  # removed by eliminate-dead-nodes, still in the state_dict
    ok, report = verify_ir_with_state_dict(ir=ir, state_dict=model.state_dict(), original_model=model, test_inputs=args)
    assert ok, report
    stray = {**model.state_dict(), "stray.weight": torch.zeros(1)}
    with pytest.raises(WeightError, match=r"unexpected \(1\): stray.weight"):
        verify_ir_with_state_dict(ir=ir, state_dict=stray, original_model=model, test_inputs=args)
    ok, report = verify_ir_with_state_dict(
        ir=ir, state_dict=stray, original_model=model, test_inputs=args, strict=False
    )
    assert ok and any("stray.weight" in note for note in report.notes)


def test_the_report_as_data_holds_every_figure_of_the_report() -> None:
    ir = _sub_ir()
    sub = next(n for n in ir.nodes if n.op_type == "aten.sub.Tensor")
    ir.graph.set_args(sub, list(reversed(sub.args)))
    is_valid, report = verify_ir(ir, SubModel().eval(), (torch.randn(2, 8),))
    assert not is_valid
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data  # plain data, as `verify --json` writes it
    assert (data["model"], data["passed"], data["error"]) == (report.model, False, "")
    out = report.outputs[0]
    assert data["outputs"] == [
        {
            "name": out.name,
            "passed": False,
            "problem": out.problem,
            "shape": [2, 4],
            "dtype": "float32",
            "max_abs": out.max_abs,
            "max_rel": out.max_rel,
            "rtol": out.comparison.rtol,
            "atol": out.comparison.atol,
        }
    ]
    assert out.max_abs > 0 and out.comparison.rtol == tolerance("float32")[0]
    d = report.divergence
    assert data["divergence"] == {
        "node": sub.name,
        "region": d.region,
        "op_type": "aten.sub.Tensor",
        "value": d.value,
        "module_path": d.module_path,
        "source": d.source,
        "max_abs": d.comparison.max_abs,
        "max_rel": d.comparison.max_rel,
    }
    assert data["divergence"]["max_abs"] > 0 and data["divergence"]["source"]["line"] > 0
    assert data["trials"] == [
        {"trial": t.index, "seed": t.seed, "inputs": t.inputs, "weights": t.weights, "passed": t.passed}
        for t in report.trials
    ]
    assert data["trials"] and data["trials"][-1]["passed"] is False
    assert (data["notes"], data["weight_sources"], data["coverage"], data["warnings"]) == (
        report.notes,
        report.weight_sources,
        report.coverage,
        report.warnings,
    )
    assert data["type_mismatches"] == [] and data["node_errors"] == [e.to_dict() for e in report.node_errors]
    assert data["node_errors"]
