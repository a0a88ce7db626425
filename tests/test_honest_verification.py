"""Verification that cannot pass falsely: weights from the user, declared types checked, sane errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from torch_ir import InterpreterError, WeightError, extract_ir, load_ir, parse_graph, verify_ir_with_state_dict
from torch_ir.cli import main
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.verifier import compare_tensors, verify_ir


class Tiny(torch.nn.Module):
    """linear -> relu -> linear, with a non-persistent buffer added to the input."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.register_buffer("shift", torch.full((4,), 0.5), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(x + self.shift))


def build_tiny() -> Tiny:
    """A ``Tiny`` with seed-0 weights (the model spec the CLI tests use)."""
    torch.manual_seed(0)
    return Tiny().eval()


def _tiny_ir():
    with torch.device("meta"):
        meta = Tiny()
    return extract_ir(meta.eval(), (torch.randn(2, 4, device="meta"),))


def test_missing_parameter_raises_weight_error_naming_it() -> None:
    ir = _tiny_ir()
    model = build_tiny()
    state = model.state_dict()
    del state["fc.bias"]
    with pytest.raises(WeightError, match=r"fc\.bias"):
        verify_ir_with_state_dict(ir=ir, state_dict=state, original_model=model, test_inputs=(torch.randn(2, 4),))
    with pytest.raises(WeightError, match=r"lack 2 .*fc\.weight, fc\.bias"):
        verify_ir_with_state_dict(ir=ir, state_dict={}, original_model=model, test_inputs=(torch.randn(2, 4),))


def test_fill_missing_from_model_passes_and_names_each_weight_it_took() -> None:
    ir = _tiny_ir()
    model = build_tiny()
    state = model.state_dict()
    del state["fc.bias"]
    ok, report = verify_ir_with_state_dict(
        ir=ir, state_dict=state, original_model=model, test_inputs=(torch.randn(2, 4),), fill_missing_from_model=True
    )
    assert ok, str(report)
    assert "fill_missing_from_model" in report.weight_sources["fc.bias"]
    assert "fc.weight" not in report.weight_sources
    assert "non-persistent" in report.weight_sources["shift"]
    assert "fc.bias" in str(report) and report.to_dict()["weight_sources"]["fc.bias"]


def test_non_persistent_buffers_still_come_from_the_model_and_are_listed() -> None:
    ir = _tiny_ir()
    model = build_tiny()
    ok, report = verify_ir_with_state_dict(
        ir=ir, state_dict=model.state_dict(), original_model=model, test_inputs=(torch.randn(2, 4),)
    )
    assert ok, str(report)
    assert list(report.weight_sources) == ["shift"]


def test_cli_verify_missing_tensor_exits_2_and_fill_from_model_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from safetensors.torch import save_file

    ir = _tiny_ir()
    ir.save(tmp_path / "tiny.json")
    state = {k: v.clone() for k, v in build_tiny().state_dict().items() if k != "fc.bias"}
    save_file(state, str(tmp_path / "w.safetensors"))
    argv = ["verify", str(tmp_path / "tiny.json"), "--model", f"{__name__}:build_tiny", "--input", "2x4"]
    argv += ["--weights", str(tmp_path / "w.safetensors")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "fc.bias" in err and "--fill-from-model" in err
    assert main([*argv, "--fill-from-model"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "fc.bias: module Tiny: parameter filled in from the model" in out


def test_wrong_declared_output_type_fails_naming_the_node(tmp_path: Path) -> None:
    ir = _tiny_ir()
    out = ir.graph.outputs[0]
    node = out.producer
    assert node is not None
    out.type = type(out.type)((2, 7), "float32")
    ir.save(tmp_path / "lying.json")
    model = build_tiny()
    ok, report = verify_ir(load_ir(tmp_path / "lying.json"), model, (torch.randn(2, 4),))
    assert not ok
    assert report.type_mismatches and report.type_mismatches[0].node == node.name
    assert f"node {node.name}" in str(report) and "f32[2,7]" in str(report)
    dtype_ir = _tiny_ir()
    dtype_ir.graph.outputs[0].type = type(out.type)((2, 3), "float16")
    ok, report = verify_ir(dtype_ir, model, (torch.randn(2, 4),))
    assert not ok and "dtype float32, not float16" in str(report)


def test_check_types_finds_a_wrong_intermediate_type() -> None:
    ir = _tiny_ir()
    relu = next(n for n in ir.nodes if n.op_type == "aten.relu.default")
    relu.outputs[0].type = type(relu.outputs[0].type)((2, 5), "float32")
    model = build_tiny()
    ok, _ = verify_ir(ir, model, (torch.randn(2, 4),))
    assert ok  # outputs alone are right
    ok, report = verify_ir(ir, model, (torch.randn(2, 4),), check_types=True)
    assert not ok and report.type_mismatches[0].node == relu.name


def test_symbolic_dims_are_bound_consistently() -> None:
    text = (
        "graph(%x: f32[s0,4]) {\n"
        "  %y = aten.cat.default([%x, %x]) : (f32[s0,4], f32[s0,4]) -> f32[2*s0,4]\n"
        "  %z = aten.relu.default(%y) : (f32[2*s0,4]) -> f32[s0,4]\n"
        "  return %z\n}"
    )

    class Cat(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(torch.cat([x, x]))

    ok, report = verify_ir(parse_graph(text), Cat(), (torch.randn(3, 4),))
    assert not ok and "dimension 0 is 6, not 3 (s0 = 3)" in str(report)
    ok, report = verify_ir(parse_graph(text.replace("-> f32[s0,4]", "-> f32[2*s0,4]")), Cat(), (torch.randn(3, 4),))
    assert ok, str(report)


def test_relative_error_is_sane_when_the_reference_is_zero() -> None:
    cmp = compare_tensors(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]))
    assert cmp.max_rel == 0.0
    cmp = compare_tensors(torch.tensor([1e-6, 2.0]), torch.tensor([0.0, 1.0]))
    assert cmp.max_rel == pytest.approx(1.0) and cmp.max_abs == pytest.approx(1.0)
    cmp = compare_tensors(torch.tensor([1e-6, 0.0]), torch.tensor([0.0, 0.0]))
    assert cmp.max_rel == math.inf and cmp.max_abs == pytest.approx(1e-6)
    assert not cmp.passed  # the default atol scales with the reference, here all zeros: only its floor is left
    assert compare_tensors(torch.tensor([1e-6, 0.0]), torch.tensor([0.0, 0.0]), atol=1e-5).passed  # absolute


@pytest.mark.parametrize(
    ("delta", "rtol", "atol", "passes"),
    [
        (0.5e-3, 1e-3, 0.0, True),  # within rtol (reference 1.0)
        (2e-3, 1e-3, 0.0, False),  # beyond rtol
        (0.5e-3, 0.0, 1e-3, True),  # within atol
        (2e-3, 0.0, 1e-3, False),  # beyond atol
        (1.5e-3, 1e-3, 1e-3, True),  # beyond each, within their sum
        (2.5e-3, 1e-3, 1e-3, False),  # beyond their sum
    ],
)
def test_tolerances_within_and_beyond(delta: float, rtol: float, atol: float, passes: bool) -> None:
    expected = torch.tensor([1.0, -1.0, 0.25], dtype=torch.float64)
    got = expected + torch.tensor([delta, 0.0, 0.0], dtype=torch.float64)
    assert compare_tensors(got, expected, rtol, atol).passed is passes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tolerance_is_judged_element_by_element_not_against_the_largest_reference(dtype: torch.dtype) -> None:
    # the small element is 50x off; measured against the largest reference (1000) it would pass
    expected = torch.tensor([1000.0, 1e-3], dtype=dtype)
    got = torch.tensor([1000.0, 0.05], dtype=dtype)
    assert not compare_tensors(got, expected).passed
    assert not compare_tensors(got.flip(0), expected.flip(0)).passed
    assert not compare_tensors(got, expected, rtol=1e-2, atol=1e-3).passed
    assert compare_tensors(got, expected, rtol=0.0, atol=0.05).passed  # an atol that covers it does pass
    assert compare_tensors(torch.tensor([1000.05, 1e-3], dtype=dtype), expected, rtol=1e-4, atol=0.0).passed


def test_verification_fails_on_a_small_output_element_beside_a_large_one() -> None:
    class Scale(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.w

    ir = parse_graph(
        "graph(%x: f32[2]) {\n  weight @w : f32[2] parameter\n"
        "  %y = aten.mul.Tensor(%x, @w) : (f32[2], f32[2]) -> f32[2]\n  return %y\n}"
    )
    x = torch.tensor([1000.0, 1e-3])
    ok, report = verify_ir_with_state_dict(
        ir=ir, state_dict={"w": torch.tensor([1.0, 50.0])}, original_model=Scale(), test_inputs=(x,), localize=False
    )
    assert not ok and not report.outputs[0].passed, str(report)
    ok, report = verify_ir_with_state_dict(
        ir=ir, state_dict=Scale().state_dict(), original_model=Scale(), test_inputs=(x,)
    )
    assert ok, str(report)


@pytest.mark.parametrize(("scale", "passes"), [(1 + 2e-5, True), (1 + 1e-3, False)])
def test_verification_with_outputs_that_differ_within_and_beyond_rtol(scale: float, passes: bool) -> None:
    ir = _tiny_ir()
    model = build_tiny()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["fc.weight"] *= scale
    state["fc.bias"] *= scale
    x = torch.rand(2, 4) + 1.0
    ok, report = verify_ir_with_state_dict(
        ir=ir, state_dict=state, original_model=model, test_inputs=(x,), rtol=1e-4, atol=0.0, localize=False
    )
    assert ok is passes, str(report)
    assert report.outputs[0].max_rel == pytest.approx(scale - 1, rel=1e-2)


def test_meta_state_dict_is_a_weight_error() -> None:
    ir = _tiny_ir()
    with torch.device("meta"):
        meta = Tiny()
    with pytest.raises(WeightError, match=r"meta device.*fc\.weight"):
        Interpreter(ir, meta)
    with pytest.raises(WeightError, match="meta device"):
        verify_ir_with_state_dict(ir=ir, state_dict=meta.state_dict(), original_model=build_tiny(), test_inputs=())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without CUDA")
def test_unavailable_device_is_an_interpreter_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ir = _tiny_ir()
    with pytest.raises(InterpreterError, match="device cuda is not available"):
        Interpreter(ir, build_tiny(), device="cuda")
    with pytest.raises(InterpreterError, match="not a device torch knows"):
        Interpreter(ir, build_tiny(), device="nonsense")
    ir.save(tmp_path / "tiny.json")
    assert main(["verify", str(tmp_path / "tiny.json"), "--model", f"{__name__}:build_tiny", "--device", "cuda"]) == 2
    assert "not available" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_runs_and_a_missing_cuda_index_is_an_interpreter_error() -> None:
    ir = _tiny_ir()
    model = build_tiny()
    ok, report = verify_ir(ir, model, (torch.randn(2, 4),), device="cuda")
    assert ok, str(report)
    with pytest.raises(InterpreterError, match="does not exist"):
        Interpreter(ir, model, device=f"cuda:{torch.cuda.device_count()}")


class _Dense(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


WRITES_AFTER_USE = """graph(%x: f32[2,4]) {
  weight @fc.weight : f32[4,4] parameter
  weight @fc.bias : f32[4] parameter
  %linear = aten.linear.default(%x, @fc.weight, @fc.bias) : (f32[2,4], f32[4,4], f32[4]) -> f32[2,4]
  %relu = aten.relu.default(%linear) : (f32[2,4]) -> f32[2,4]
  %z = aten.zero_.default(@fc.bias) : (f32[4]) -> f32[4]
  %m = aten.mul_.Tensor(%x, 2) : (f32[2,4]) -> f32[2,4]
  return %relu
}
"""


def test_writes_into_a_weight_and_an_input_after_their_last_read_fail_naming_each_writer() -> None:
    model = _Dense().eval()
    x = torch.randn(2, 4)
    before = (x.clone(), model.fc.bias.detach().clone())
    ok, report = verify_ir(parse_graph(WRITES_AFTER_USE), model, (x,))
    assert not ok
    # the output is right: only the writes are wrong, each named by the node that made it
    assert [(o.name, o.passed, o.problem) for o in report.outputs] == [
        ("output[0]", True, ""),
        ("weight @fc.bias", False, "the IR wrote into it: node z (aten.zero_.default)"),
        ("input %x", False, "the IR wrote into it: node m (aten.mul_.Tensor)"),
    ]
    assert "FAIL: the IR wrote into it: node z (aten.zero_.default)" in str(report)
    # the run was on copies: the caller's input and the model's weight are as they were
    assert torch.equal(x, before[0]) and torch.equal(model.fc.bias, before[1])
    honest = "\n".join(
        line for line in WRITES_AFTER_USE.splitlines() if " = aten.zero_" not in line and "mul_" not in line
    )
    assert verify_ir(parse_graph(honest + "\n"), model, (x,))[0]
