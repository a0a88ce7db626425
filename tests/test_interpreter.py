"""The reference interpreter: every test model extracted on meta, saved, loaded, and run against eager."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.models import MODELS, ModelCase, get_model
from torch_ir import InterpreterError, extract_ir, load_ir, parse_graph, verify_ir_with_state_dict
from torch_ir.ir.text import parse_module
from torch_ir.passes.hoist_weights import HoistWeights
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


# An input update with a second input beside it: the update must land in %x, never in %w.
INPUT_UPDATE = """graph(%x: f32[3], %w: f32[2,3]) {
  %y = aten.add.Tensor(%x, 1.0) {alpha=1} : (f32[3]) -> f32[3]
  %s = aten.sum.default(%w) {dtype=null} : (f32[2,3]) -> f32[]
  update %x = %y
  return %s
}"""


@pytest.mark.parametrize(
    "keep", [{}, {"keep": ["y"]}, {"keep": ["x"]}, {"keep_all": True}], ids=["none", "keep-y", "keep-x", "keep-all"]
)
def test_an_input_update_lands_in_its_input_whatever_is_kept(keep: dict) -> None:
    x, w = torch.ones(3), torch.zeros(2, 3)
    interp = Interpreter(parse_graph(INPUT_UPDATE), **keep)
    assert float(interp(x, w)) == 0.0
    assert x.tolist() == [2.0, 2.0, 2.0]  # what the model writes
    assert w.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]  # untouched
    interp(x, w)
    assert x.tolist() == [3.0, 3.0, 3.0] and not w.any()


def test_an_input_update_reaches_the_caller_when_the_run_works_on_a_copy_of_the_input() -> None:
    # add_ writes %x in place, so the interpreter runs on a private copy of x (the caller's tensor is never
    # written by an op); the update is then the one way the new value reaches the caller's x
    ir = parse_graph(
        "graph(%x: f32[3], %w: f32[3]) {\n"
        "  %a = aten.add_.Tensor(%x, %w) {alpha=1} : (f32[3], f32[3]) -> f32[3]\n"
        "  %y = aten.mul.Tensor(%a, 2.0) : (f32[3]) -> f32[3]\n"
        "  update %x = %y\n"
        "  return %a\n}"
    )
    x, w = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0])
    interp = Interpreter(ir)
    assert "x" in interp._guard.written  # the path under test: the run's x is a copy
    out = interp(x, w)
    assert out.tolist() == [11.0, 22.0, 33.0]
    assert x.tolist() == [22.0, 44.0, 66.0] and w.tolist() == [10.0, 20.0, 30.0]
    assert out.data_ptr() != x.data_ptr()
    without_update = parse_graph(
        "graph(%x: f32[3], %w: f32[3]) {\n"
        "  %a = aten.add_.Tensor(%x, %w) {alpha=1} : (f32[3], f32[3]) -> f32[3]\n"
        "  return %a\n}"
    )
    x = torch.tensor([1.0, 2.0, 3.0])
    assert Interpreter(without_update)(x, w).tolist() == [11.0, 22.0, 33.0]
    assert x.tolist() == [1.0, 2.0, 3.0]  # no update declared: the caller's x stays as it was


# ------------------------------------------------------------- what mutation testing found untested


def test_a_failing_node_is_named_with_its_module_source_and_operands() -> None:
    ir = parse_graph(
        "graph(%x: f32[2,3], %w: f32[4,5]) {\n"
        "  %y = aten.mm.default(%x, %w) : (f32[2,3], f32[4,5]) -> f32[2,5]\n"
        "  return %y\n}"
    )
    node = ir.nodes[0]
    node.meta["module_stack"] = [("", "Model"), ("blocks.0.fc", "Linear")]
    node.meta["source"] = {"file": "model.py", "line": 12}
    x, w = torch.ones(2, 3), torch.ones(4, 5)
    with pytest.raises(InterpreterError) as caught:
        Interpreter(ir)(x, w)
    assert str(caught.value).startswith(
        "node y (aten.mm.default) in module blocks.0.fc at model.py:12 failed on (float32[2, 3], float32[4, 5]): "
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied"
    )
    node.meta["module_stack"] = []
    node.meta["source"] = {"file": "", "line": 3}  # no file: no location
    with pytest.raises(InterpreterError, match=r"^node y \(aten\.mm\.default\) failed on \(float32\[2, 3\], float32"):
        Interpreter(ir)(x, w)


def test_a_list_operand_is_described_element_by_element() -> None:
    ir = parse_graph(
        "graph(%x: f32[2,3], %w: f32[4,5]) {\n"
        "  %c = aten.cat.default([%x, %w], 1) : (f32[2,3], f32[4,5]) -> f32[2,8]\n"
        "  return %c\n}"
    )
    with pytest.raises(InterpreterError, match=r"failed on \(\[float32\[2, 3\], float32\[4, 5\]\], 1\): RuntimeError"):
        Interpreter(ir)(torch.ones(2, 3), torch.ones(4, 5))


def test_a_kernel_that_is_not_implemented_says_how_to_register_one() -> None:
    from torch_ir import register_op
    from torch_ir.ops.registry import unregister_op

    def unimplemented(x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("only on the accelerator")

    register_op("testlib::accel_only", kernel=unimplemented)
    try:
        ir = parse_graph(
            "graph(%x: f32[3]) {\n  %y = testlib.accel_only.default(%x) : (f32[3]) -> f32[3]\n  return %y\n}"
        )
        with pytest.raises(InterpreterError) as caught:
            Interpreter(ir)(torch.ones(3))
    finally:
        unregister_op("testlib::accel_only")
    assert str(caught.value) == (
        "node y (testlib.accel_only.default): op testlib.accel_only.default has no kernel for device cpu "
        "(only on the accelerator). Register one with torch_ir.register_op('testlib::accel_only', kernel=fn)"
    )


def test_iter_values_yields_every_node_with_its_results_in_order() -> None:
    ir = parse_graph(
        "graph(%x: f32[4]) {\n"
        "  %a = aten.relu.default(%x) : (f32[4]) -> f32[4]\n"
        "  %s, %t = aten.split.Tensor(%a) {split_size=2} : (f32[4]) -> (f32[2], f32[2])\n"
        "  %m = aten.mul.Tensor(%s, %t) : (f32[2], f32[2]) -> f32[2]\n"
        "  return %m\n}"
    )
    x = torch.tensor([-1.0, 2.0, 3.0, -4.0])
    steps = list(Interpreter(ir).iter_values([x]))
    assert [node.name for node, _ in steps] == ["a", "s", "m"]
    assert [[v.tolist() for v in values] for _, values in steps] == [
        [[0.0, 2.0, 3.0, 0.0]],
        [[0.0, 2.0], [3.0, 0.0]],
        [[0.0, 0.0]],
    ]
    with pytest.raises(InterpreterError, match="takes 1 input"):
        list(Interpreter(ir).iter_values([]))


def test_the_init_graph_runs_under_the_callers_policy() -> None:
    from torch_ir.runtime.interpreter import run_init_graph
    from torch_ir.runtime.sandbox import ExecutionPolicy

    init = parse_graph(
        "graph() {\n  weight @w : f32[4] parameter\n"
        "  %big = aten.expand.default(@w) {size=[1000, 4]} : (f32[4]) -> f32[1000,4]\n  return %big\n}"
    )
    tensors = {"w": torch.arange(4.0)}
    assert run_init_graph(init, tensors)["big"].shape == (1000, 4)  # the default budget is 64 GiB
    with pytest.raises(InterpreterError, match=r"node big .*memory budget of 1 KiB"):
        run_init_graph(init, tensors, policy=ExecutionPolicy(memory_budget=1024))
    printing = parse_graph(
        "graph() {\n  weight @w : f32[4] parameter\n"
        '  aten._print.default() {s="init"} : () -> () loc(say)\n'
        "  %n = aten.neg.default(@w) : (f32[4]) -> f32[4]\n  return %n\n}"
    )
    with pytest.raises(InterpreterError, match=r"node say \(aten\._print\.default\) is refused"):
        run_init_graph(printing, tensors)
    out = run_init_graph(printing, tensors, device="cpu", policy=ExecutionPolicy(allow_side_effects=True))
    assert out["n"].tolist() == [-0.0, -1.0, -2.0, -3.0]


def test_assign_replaces_bound_weights_for_the_next_call() -> None:
    ir = parse_graph(
        "graph(%x: f32[2]) {\n  weight @w : f32[2] parameter\n"
        "  %y = aten.mul.Tensor(%x, @w) : (f32[2], f32[2]) -> f32[2]\n  return %y\n}"
    )
    interp = Interpreter(ir, {"w": torch.ones(2)})
    x = torch.tensor([2.0, 3.0])
    assert interp(x).tolist() == [2.0, 3.0]
    interp.assign({"w": torch.tensor([10.0, 100.0])})
    assert interp(x).tolist() == [20.0, 300.0] and interp.weights["w"].tolist() == [10.0, 100.0]
    with pytest.raises(InterpreterError, match="cannot assign @nope: the IR has no weight of that name"):
        interp.assign({"nope": torch.ones(2)})


def test_run_ir_binds_and_runs_in_one_call() -> None:
    from torch_ir.runtime.interpreter import run_ir

    ir = parse_graph(
        "graph(%x: f32[2], %y: f32[2]) {\n  weight @w : f32[2] parameter\n"
        "  %a = aten.mul.Tensor(%x, @w) : (f32[2], f32[2]) -> f32[2]\n"
        "  %b = aten.sub.Tensor(%a, %y) {alpha=1} : (f32[2], f32[2]) -> f32[2]\n  return %b\n}"
    )
    x, y, w = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.5]), torch.tensor([3.0, 4.0])
    assert run_ir(ir, {"w": w}, x, y, device="cpu").tolist() == [2.5, 7.5]
    with pytest.raises(InterpreterError, match="device 'gpu0'"):
        run_ir(ir, {"w": w}, x, y, device="gpu0")


def test_an_error_without_a_message_is_named_by_its_type() -> None:
    from torch_ir import register_op
    from torch_ir.ops.registry import unregister_op

    def silent(x: torch.Tensor) -> torch.Tensor:
        raise ValueError

    register_op("testlib::silent_failure", kernel=silent)
    try:
        ir = parse_graph(
            "graph(%x: f32[3]) {\n  %y = testlib.silent_failure.default(%x) : (f32[3]) -> f32[3]\n  return %y\n}"
        )
        with pytest.raises(InterpreterError, match=r"failed on \(float32\[3\]\): ValueError: ValueError$"):
            Interpreter(ir)(torch.ones(3))
    finally:
        unregister_op("testlib::silent_failure")


CALLS = """module {
  weight @w : f32[4,4] parameter
  func forward graph(%x: f32[2,4], %acc: f32[2,4], %ids: i64[2]) {
    %a = func.call(%x, @w) {callee="block"} : (f32[2,4], f32[4,4]) -> f32[2,4]
    %b = func.call(%a) {callee="project"} : (f32[2,4]) -> f32[2,4]
    %g = func.call(%b, %ids) {callee="gather"} : (f32[2,4], i64[2]) -> f32[2,4]
    %c = func.call(%acc, %g) {callee="accumulate"} : (f32[2,4], f32[2,4]) -> f32[2,4]
    %d = aten.mul.Tensor(%acc, 2) : (f32[2,4]) -> f32[2,4]
    return %c, %d
  }
  func private block graph(%h: f32[2,4], %t: f32[4,4]) {
    %m = aten.mm.default(%h, %t) : (f32[2,4], f32[4,4]) -> f32[2,4]
    %r = aten.relu.default(%m) : (f32[2,4]) -> f32[2,4]
    return %r
  }
  func private project graph(%h: f32[2,4]) {
    %m = aten.mm.default(%h, @w) : (f32[2,4], f32[4,4]) -> f32[2,4]
    %r = func.call(%m) {callee="act"} : (f32[2,4]) -> f32[2,4]
    return %r
  }
  func private act graph(%v: f32[2,4]) {
    %r = aten.relu.default(%v) : (f32[2,4]) -> f32[2,4]
    return %r
  }
  func private gather graph(%v: f32[2,4], %i: i64[2]) {
    %s = aten.index_select.default(%v, 0, %i) : (f32[2,4], i64[2]) -> f32[2,4]
    return %s
  }
  func private accumulate graph(%s: f32[2,4], %v: f32[2,4]) {
    %r = aten.add_.Tensor(%s, %v) : (f32[2,4], f32[2,4]) -> f32[2,4]
    return %r
  }
}
"""


def _calls_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The weight @w of CALLS, and its three inputs x, acc and ids."""
    return torch.randn(4, 4), torch.randn(2, 4), torch.randn(2, 4), torch.tensor([1, 0])


@dataclass
class _CallsRun:
    """CALLS run once by an interpreter bound to a random @w: its inputs, acc as given, its two outputs."""

    interpreter: Interpreter
    w: torch.Tensor
    x: torch.Tensor
    acc: torch.Tensor
    ids: torch.Tensor
    before: torch.Tensor
    out: torch.Tensor
    doubled: torch.Tensor


def _run_calls() -> _CallsRun:
    w, x, acc, ids = _calls_inputs()
    before = acc.clone()
    interpreter = Interpreter(parse_module(CALLS), {"w": w})
    out, doubled = interpreter(x, acc, ids)
    return _CallsRun(interpreter, w, x, acc, ids, before, out, doubled)


def test_calls_run_their_callees_with_the_modules_weights_and_write_their_operands() -> None:
    run = _run_calls()
    x, ids = run.x, run.ids
    expected = run.before + torch.relu(torch.relu(x @ run.w) @ run.w)[ids]
    torch.testing.assert_close(run.out, expected)
    # the body of accumulate wrote its operand: the caller's %acc, read after the call, holds the sum
    torch.testing.assert_close(run.doubled, 2 * expected)
    assert torch.equal(run.acc, run.before)  # the caller's own tensor is not the IR's to change: no update names it
    # new weights reach the bodies that read them, as an operand (block) or from the module (project, which
    # calls act in turn)
    other = torch.randn(4, 4)
    run.interpreter.set_weights({"w": other})
    rerun = run.interpreter(x, run.acc, ids)[0]
    torch.testing.assert_close(rerun, run.before + torch.relu(torch.relu(x @ other) @ other)[ids])


def test_an_error_inside_a_callee_names_the_call_and_a_graph_alone_cannot_call() -> None:
    ir = parse_module(CALLS)
    w, x, acc, _ = _calls_inputs()
    with pytest.raises(InterpreterError, match=r"^in gather, called by node g: node s \(aten.index_select.default\)"):
        Interpreter(ir, {"w": w})(x, acc, torch.tensor([5, 0]))
    with pytest.raises(InterpreterError, match="node a calls 'block', but the interpreter runs a graph without"):
        Interpreter(ir.graph, {"w": w})(x, acc, torch.tensor([1, 0]))
    wrong = parse_module(
        CALLS.replace(
            'func.call(%a) {callee="project"} : (f32[2,4])',
            'func.call(%a, %a) {callee="project"} : (f32[2,4], f32[2,4])',
        )
    )
    with pytest.raises(InterpreterError, match=r"^node b \(func.call\): passes 2 operands, but project takes 1"):
        Interpreter(wrong, {"w": w})(x, acc, torch.tensor([1, 0]))


def test_the_callers_limits_hold_inside_its_callees() -> None:
    ir = parse_module(CALLS)
    w, x, acc, ids = _calls_inputs()
    # 160 bytes live inside act, called by project, called by the entry: over a budget of 150, under 200
    with pytest.raises(
        InterpreterError,
        match=r"^in project, called by node b: in act, called by node r: node r \(aten.relu.default\) is refused: "
        r"the run would hold 160 B live at once, over the memory budget of 150 B",
    ):
        Interpreter(ir, {"w": w}, memory_budget=150)(x, acc, ids)
    Interpreter(ir, {"w": w}, memory_budget=200)(x, acc, ids)


def test_the_memory_budget_counts_weights_the_ir_computes_but_never_the_callers() -> None:
    text = """graph(%x: f32[64]) {
  weight @w : f32[64] parameter
  %t = aten.neg.default(@w) : (f32[64]) -> f32[64]
  %a = aten.add.Tensor(%x, %t) : (f32[64], f32[64]) -> f32[64]
  return %a
}"""
    x, w = torch.randn(64), torch.randn(64)
    computed = parse_graph(text)
    HoistWeights()(computed)  # neg(@w) becomes a derived weight the run holds: 256 bytes, as t was
    for graph in (parse_graph(text), computed):
        # 256 bytes of t or the derived weight, 256 of a; the caller's @w and %x are not the run's to count
        with pytest.raises(InterpreterError, match="would hold 512 B live at once, over the memory budget of 511 B"):
            Interpreter(graph, {"w": w}, memory_budget=511)(x)
        torch.testing.assert_close(Interpreter(graph, {"w": w}, memory_budget=512)(x), x - w)


def test_an_ir_writing_into_a_weight_writes_its_own_copy_not_the_callers() -> None:
    graph = parse_graph("""graph(%x: f32[2,4]) {
  weight @b : f32[4] parameter
  %a = aten.add.Tensor(%x, @b) : (f32[2,4], f32[4]) -> f32[2,4]
  %z = aten.zero_.default(@b) : (f32[4]) -> f32[4]
  return %a
}""")
    b, x = torch.ones(4), torch.randn(2, 4)
    torch.testing.assert_close(Interpreter(graph, {"b": b})(x), x + 1)
    assert torch.equal(b, torch.ones(4))


def test_node_by_node_replay_goes_into_calls_and_names_the_call_of_each_inner_node() -> None:
    run = _run_calls()
    inputs = [run.x, run.acc, run.ids]
    replay = [(n.name, None if c is None else c.name, vals) for n, vals, c in run.interpreter.iter_call_values(inputs)]
    # each body's nodes, attributed to their call, then the call's own result (a body's calls are not entered)
    assert [(name, call) for name, call, _ in replay] == [
        ("m", "a"), ("r", "a"), ("a", None),
        ("m", "b"), ("r", "b"), ("b", None),
        ("s", "g"), ("g", None),
        ("r", "c"), ("c", None),
        ("d", None),
    ]  # fmt: skip
    values = {(name, call): vals[0] for name, call, vals in replay}
    torch.testing.assert_close(values[("a", None)], torch.relu(run.x @ run.w))
    torch.testing.assert_close(values[("r", "a")], values[("a", None)])
    # the replay of accumulate starts from what the call was given: the results are the run's
    torch.testing.assert_close(values[("c", None)], run.out)
    torch.testing.assert_close(values[("d", None)], run.doubled)
    assert torch.equal(run.acc, run.before)
    assert [n.name for n, _ in run.interpreter.iter_values(inputs)] == ["a", "b", "g", "c", "d"]


def test_open_runs_another_graph_of_the_module_with_the_same_weights_and_policy() -> None:
    ir = parse_module(CALLS)
    w, h = torch.randn(4, 4), torch.randn(2, 4)
    interpreter = Interpreter(ir, {"w": w}, memory_budget=150)
    body = interpreter.open(ir.function("project").graph, keep=("m",))
    torch.testing.assert_close(body(h), torch.relu(h @ w))  # @w bound as in the module, act called
    torch.testing.assert_close(body.kept["m"], h @ w)
    assert body.policy.budget == interpreter.policy.budget and not body.policy.dry_run
    kept_all = interpreter.open(ir.function("block").graph, keep_all=True)
    kept_all(h, w)
    assert set(kept_all.kept) == {"h", "t", "m", "r"}


SIZED = """graph(%a: f32[n,4], %b: i64[n], %k: int) {
  symbol n : 2..8
  return %a
}"""


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((3, 4), (4,)), "input b: dimension 0 is 4, but symbol n is 3"),
        (((9, 4), (9,)), "input a: dimension 0 = 9 is outside n in 2..8"),
        (((1, 4), (1,)), "input a: dimension 0 = 1 is outside n in 2..8"),
        (((3, 5), (3,)), r"input a: expected shape [n, 4], got [3, 5] (dimension 1)"),
        (((3, 4, 1), (3,)), "input a: expected shape [n, 4], got [3, 4, 1]"),
    ],
)
def test_inputs_are_checked_against_their_types_and_the_symbols_they_bind(
    shapes: tuple[tuple[int, ...], tuple[int, ...]], message: str
) -> None:
    interpreter = Interpreter(parse_graph(SIZED), {})
    a, b = torch.zeros(shapes[0]), torch.zeros(shapes[1], dtype=torch.int64)
    with pytest.raises(InterpreterError) as info:
        interpreter(a, b, 5)
    assert str(info.value) == message


def test_inputs_of_the_right_types_run_at_either_end_of_the_symbols_range() -> None:
    interpreter = Interpreter(parse_graph(SIZED), {})
    for n in (2, 8):
        assert interpreter(torch.ones(n, 4), torch.zeros(n, dtype=torch.int64), 5).shape == (n, 4)
    with pytest.raises(InterpreterError, match=r"^the IR takes 3 input\(s\) \(a, b, k\), got 1$"):
        interpreter(torch.ones(3, 4))
    with pytest.raises(InterpreterError, match=r"^input a: expected a tensor f32\[n,4\], got list$"):
        interpreter([1.0], torch.zeros(3, dtype=torch.int64), 5)
    with pytest.raises(InterpreterError, match="^input b: expected dtype int64, got int32$"):
        interpreter(torch.ones(3, 4), torch.zeros(3, dtype=torch.int32), 5)
