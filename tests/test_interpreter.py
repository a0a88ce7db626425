"""The reference interpreter: every test model extracted on meta, saved, loaded, and run against eager."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.models import MODELS, ModelCase, get_model
from torch_ir import InterpreterError, extract_ir, load_ir, parse_graph, verify_ir_with_state_dict
from torch_ir.runtime.interpreter import Interpreter, convert_attr
from torch_ir.runtime.worker import isolation


def _extract(case: ModelCase, pipeline: str = "default"):
    args, kwargs = case.inputs("meta")
    return extract_ir(
        case.build_meta(), args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes, pipeline=pipeline
    )


TRUSTED_CUSTOM_OPS: dict[str, dict[str, Any]] = {
    "custom_op": {"allow_ops": ("torch_ir_tests::scaled_gelu",), "plugins": ("tests.models.custom_op",)}
}


@pytest.mark.parametrize("case", MODELS, ids=[m.name for m in MODELS])
def test_every_test_model_verifies_after_save_and_load(case: ModelCase, tmp_path: Path) -> None:
    path = tmp_path / f"{case.name}.json"
    _extract(case).save(path)
    ir = load_ir(path)
    real = case.build_real()
    args, kwargs = case.inputs("cpu")
    # a file's IR runs in a worker, only allow-listed ops: a custom op is named and its library imported there
    trusted = TRUSTED_CUSTOM_OPS.get(case.name, {})
    with isolation(**trusted):
        is_valid, report = verify_ir_with_state_dict(
            ir=ir,
            state_dict=real.state_dict(),
            original_model=real,
            test_inputs=args,
            test_kwargs=kwargs,
            rtol=case.rtol,
            atol=case.atol,
        )
    assert is_valid, str(report)
    assert all(o.passed for o in report.outputs) and report.outputs


def test_results_come_back_in_the_model_output_structure() -> None:
    case = get_model("kwargs_dict")
    real = case.build_real()
    args, kwargs = case.inputs("cpu")
    out = Interpreter(_extract(case, "none"), real)(*args, **kwargs)
    expected = real(*args, **kwargs)
    assert set(out) == {"logits", "aux"} and isinstance(out["aux"], tuple) and len(out["aux"]) == 2
    torch.testing.assert_close(out["logits"], expected["logits"])
    torch.testing.assert_close(out["aux"][1], expected["aux"][1])


def test_dynamic_batch_runs_at_other_sizes() -> None:
    case = get_model("dynamic_batch")
    real = case.build_real()
    interp = Interpreter(_extract(case, "none"), real)
    for batch in (1, 7):
        x = torch.randn(batch, 12)
        torch.testing.assert_close(interp(x), real(x))


def test_keep_and_keep_all_keep_intermediates() -> None:
    case = get_model("residual_mlp")
    ir = _extract(case, "none")
    real = case.build_real()
    args, _ = case.inputs("cpu")
    name = ir.nodes[1].outputs[0].name
    interp = Interpreter(ir, real, keep=[name])
    interp(*args)
    assert set(interp.kept) == {name}
    everything = Interpreter(ir, real, keep_all=True)
    everything(*args)
    assert {v.name for n in ir.nodes for v in n.outputs} <= set(everything.kept)
    with pytest.raises(InterpreterError, match="no_such_value"):
        Interpreter(ir, real, keep=["no_such_value"])


def test_intermediates_are_freed_after_their_last_use() -> None:
    ir = parse_graph(
        "graph(%x: f32[4]) {\n"
        "  %a = aten.relu.default(%x) : (f32[4]) -> f32[4]\n"
        "  %b = aten.neg.default(%a) : (f32[4]) -> f32[4]\n"
        "  %c = aten.exp.default(%b) : (f32[4]) -> f32[4]\n"
        "  return %c\n}"
    )
    interp = Interpreter(ir)
    frees = {step.node.name: step.frees for step in interp._steps}
    slot_of_a = interp._steps[0].outs[0]
    slot_of_b = interp._steps[1].outs[0]
    assert slot_of_a in frees["b"] and slot_of_b in frees["c"]
    assert interp._steps[2].outs[0] not in frees["c"]  # outputs stay
    torch.testing.assert_close(
        interp(torch.tensor([-1.0, 0.0, 1.0, 2.0])), torch.exp(-torch.relu(torch.tensor([-1.0, 0.0, 1.0, 2.0])))
    )


def test_attrs_are_converted_by_schema_type() -> None:
    device = torch.device("cpu")
    assert convert_attr("float32", "ScalarType", device) is torch.float32
    assert convert_attr("meta", "Device", device) == device
    assert convert_attr("strided", "Layout", device) is torch.strided
    assert convert_attr("contiguous_format", "MemoryFormat", device) is torch.contiguous_format
    assert convert_attr("-inf", "number", device) == float("-inf")
    assert convert_attr(["inf", 1.0], "List[float]", device) == [float("inf"), 1.0]


def test_a_graph_that_says_meta_runs_on_the_interpreter_device() -> None:
    ir = parse_graph(
        "graph(%x: f32[3]) {\n"
        '  %r = aten.arange.default() {end=3, dtype="float32", layout="strided", device="meta", pin_memory=false}'
        " : () -> f32[3]\n"
        "  %y = aten.add.Tensor(%x, %r) {alpha=1} : (f32[3], f32[3]) -> f32[3]\n"
        "  return %y\n}"
    )
    torch.testing.assert_close(Interpreter(ir)(torch.ones(3)), torch.tensor([1.0, 2.0, 3.0]))


def test_init_graph_runs_once_when_weights_are_bound() -> None:
    ir = parse_graph(
        "graph(%x: f32[2,3]) {\n"
        "  weight @w.t : f32[3,4] derived\n"
        "  init\n  graph() {\n    weight @w : f32[4,3] parameter\n"
        "    %w.t = aten.t.default(@w) : (f32[4,3]) -> f32[3,4]\n    return %w.t\n  }\n"
        "  %y = aten.mm.default(%x, @w.t) : (f32[2,3], f32[3,4]) -> f32[2,4]\n"
        "  return %y\n}"
    )
    w = torch.randn(4, 3)
    x = torch.randn(2, 3)
    interp = Interpreter(ir, {"w": w})
    torch.testing.assert_close(interp(x), x @ w.t())
    assert set(interp.weights) == {"w.t"}


# --------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def two_tower():
    case = get_model("two_tower")
    return case, _extract(case, "none"), case.build_real()


def test_wrong_number_of_inputs(two_tower) -> None:
    case, ir, real = two_tower
    args, _ = case.inputs("cpu")
    with pytest.raises(InterpreterError, match="inputs do not match"):
        Interpreter(ir, real)(args[0])


def test_wrong_input_shape_names_the_input(two_tower) -> None:
    case, ir, real = two_tower
    args, _ = case.inputs("cpu")
    bad = (torch.randn(*args[0].shape[:-1], args[0].shape[-1] + 1), *args[1:])
    name = ir.inputs[0].name
    with pytest.raises(InterpreterError, match=f"input {name}: expected shape"):
        Interpreter(ir, real)(*bad)


def test_wrong_input_dtype_names_the_input(two_tower) -> None:
    case, ir, real = two_tower
    args, _ = case.inputs("cpu")
    bad = (args[0].double(), *args[1:])
    with pytest.raises(InterpreterError, match=f"input {ir.inputs[0].name}: expected dtype float32"):
        Interpreter(ir, real)(*bad)


def test_unknown_op_has_no_kernel() -> None:
    ir = parse_graph("graph(%x: f32[3]) {\n  %y = mylib_missing.fused.default(%x) : (f32[3]) -> f32[3]\n  return %y\n}")
    with pytest.raises(InterpreterError, match=r"no kernel for op mylib_missing\.fused\.default.*register_op"):
        Interpreter(ir)
