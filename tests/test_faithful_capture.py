"""Faithful weight-free capture: traced as the CPU, functional, with explicit state updates.

Each test model of the ``faithful`` category is extracted on meta, saved, loaded, run by the interpreter
with real weights and compared with eager PyTorch, the caller's inputs checked unchanged (or changed as
eager changes them), and state updates checked against the module's state after the call.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.models import MODELS, get_model
from torch_ir import (
    ExportError,
    TorchIRWarning,
    WeightError,
    extract_ir,
    load_ir,
    parse_graph,
    verify_ir,
)
from torch_ir.ops import op_info
from torch_ir.runtime.interpreter import Interpreter

FAITHFUL = [m.name for m in MODELS if m.category == "faithful"]


def _extract_saved(name: str, tmp_path: Path, **options: Any):
    case = get_model(name)
    args, kwargs = case.inputs("meta")
    ir = extract_ir(case.build_meta(), args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes, **options)
    path = tmp_path / f"{name}.json"
    ir.save(path)
    return load_ir(path)


def _writes(op_type: str) -> bool:
    schema = op_info(op_type).schema
    return bool(schema is not None and schema.is_mutable)


@pytest.mark.parametrize("name", FAITHFUL)
def test_faithful_model_runs_like_eager_after_save_and_load(name: str, tmp_path: Path) -> None:
    case = get_model(name)
    ir = _extract_saved(name, tmp_path)
    real = case.build_real()
    args, kwargs = case.inputs("cpu")
    before = [a.clone() for a in args if isinstance(a, torch.Tensor)]
    state_before = {k: v.clone() for k, v in real.state_dict().items()}
    ok, report = verify_ir(ir, real, args, kwargs, rtol=case.rtol, atol=case.atol)
    assert ok, str(report)
    # verification neither writes the caller's inputs nor leaves the module changed
    for old, new in zip(before, [a for a in args if isinstance(a, torch.Tensor)]):
        assert torch.equal(old, new)
    for key, value in real.state_dict().items():
        assert torch.equal(state_before[key], value), key


def test_constants_made_in_forward_carry_their_values(tmp_path: Path) -> None:
    ir = _extract_saved("made_in_forward", tmp_path)
    data = sorted(repr(w.data) for w in ir.weights.values() if w.kind == "constant")
    assert data == ["0.25", "[-1, 0, 2]"]
    real = get_model("made_in_forward").build_real()
    x = torch.randn(2, 6)
    # no module needed for the constants: the state_dict alone runs the IR
    torch.testing.assert_close(Interpreter(ir, real.state_dict())(x), real(x))


def test_meta_trace_marks_and_reports_unknown_constants(tmp_path: Path) -> None:
    case = get_model("made_in_forward")
    args, _ = case.inputs("meta")
    with pytest.warns(TorchIRWarning, match=r"constant lifted_tensor_0 made at .*faithful\.py:\d+"):
        ir = extract_ir(case.build_meta(), args, device="meta")
    assert ir.graph.meta["device"] == "meta"
    assert set(ir.graph.meta["unknown_constants"]) == {"lifted_tensor_0", "lifted_tensor_1"}
    with pytest.raises(WeightError, match=r"lifted_tensor_0 \[a constant made in forward at .*faithful\.py"):
        Interpreter(ir, case.build_real().state_dict())


def test_default_trace_records_cpu_and_warns_about_nothing() -> None:
    case = get_model("made_in_forward")
    args, _ = case.inputs("meta")
    with warnings.catch_warnings():
        warnings.simplefilter("error", TorchIRWarning)
        ir = extract_ir(case.build_meta(), args)
    assert ir.graph.meta["device"] == "cpu"
    assert "unknown_constants" not in ir.graph.meta


def test_device_branch_takes_the_cpu_branch() -> None:
    case = get_model("device_branch")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0])
    assert [n.op_type for n in ir.nodes] == ["aten.linear.default", "aten.mul.Tensor"]
    on_meta = extract_ir(case.build_meta(), case.inputs("meta")[0], device="meta")
    assert [n.op_type for n in on_meta.nodes][-1] == "aten.sub.Tensor"


def test_unavailable_trace_device_is_a_clear_error() -> None:
    case = get_model("device_branch")
    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA")
    with pytest.raises(ExportError, match=r"trace device 'cuda' is not available .* 'cpu' .* 'meta'"):
        extract_ir(case.build_meta(), case.inputs("meta")[0], device="cuda")
    with pytest.raises(ExportError, match="not a device torch knows"):
        extract_ir(case.build_meta(), case.inputs("meta")[0], device="warp-drive")


def test_the_users_model_is_left_as_it_was() -> None:
    case = get_model("tied_head")
    model = case.build_meta()
    params = {k: (id(v), v.device.type) for k, v in model.named_parameters(remove_duplicate=False)}
    ir = extract_ir(model, case.inputs("meta")[0])
    assert {k: (id(v), v.device.type) for k, v in model.named_parameters(remove_duplicate=False)} == params
    assert model.head.weight is model.embed.weight
    # traced fake, the tied parameter stays one weight with its alias, read by both ops
    (weight,) = ir.weights.values()
    assert weight.name == "embed.weight" and weight.aliases == ("head.weight",)
    assert len(ir.graph.users(weight)) == 2


def test_model_built_inside_a_fake_mode_is_accepted() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        model = get_model("device_branch").build().eval()
        x = torch.randn(2, 4)
    ir = extract_ir(model, (x,))
    assert [n.op_type for n in ir.nodes] == ["aten.linear.default", "aten.mul.Tensor"]
    assert ir.graph.meta["device"] == "cpu"


@pytest.mark.parametrize("case", MODELS, ids=lambda c: c.name)
def test_no_extracted_ir_writes_to_a_tensor(case: Any) -> None:
    args, kwargs = case.inputs("meta")
    ir = extract_ir(case.build_meta(), args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes, pipeline="none")
    writers = [n.op_type for g in (ir.graph, ir.graph.init) if g is not None for n in g.nodes if _writes(n.op_type)]
    assert writers == []


def test_state_updates_in_text_json_and_passes(tmp_path: Path) -> None:
    ir = _extract_saved("buffer_counter", tmp_path)
    text = ir.to_text()
    assert "update @count = %add_\n" in text and "update @total = %add__1\n" in text
    assert str(parse_graph(text)) == text
    doc = json.loads((tmp_path / "buffer_counter.json").read_text())
    assert doc["schema_version"] >= 2
    assert doc["module"]["functions"][0]["graph"]["state_updates"] == [
        {"kind": "buffer", "target": "count", "value": "%add_"},
        {"kind": "buffer", "target": "total", "value": "%add__1"},
    ]
    # the default pipeline ran: dead-node elimination kept the updates, hoisting did not move
    # buffer arithmetic into the init graph (a buffer that changes between calls is not a constant)
    assert ir.graph.init is None
    assert [u.target for u in ir.graph.state_updates] == ["count", "total"]


def test_interpreter_carries_state_from_call_to_call() -> None:
    case = get_model("buffer_counter")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0])
    real = case.build_real()
    interp = Interpreter(ir, real)
    xs = [torch.randn(2, 4) for _ in range(3)]
    for x in xs:
        torch.testing.assert_close(interp(x), real(x))
    assert int(interp.weights["count"]) == 3 == int(real.count)
    torch.testing.assert_close(interp.weights["total"], real.total)


def test_state_carries_over_calls_when_the_interpreter_holds_its_own_copy() -> None:
    # bound to a clone of the state_dict, the interpreter shares no buffer with eager, whose own add_ could
    # otherwise make a lost update look carried: three IR calls, then three eager calls, compared call by call
    case = get_model("buffer_counter")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0])
    real = case.build_real()
    state = {k: v.clone() for k, v in real.state_dict().items()}
    interp = Interpreter(ir, state)
    xs = [torch.randn(2, 4) for _ in range(3)]
    got = [interp(x) for x in xs]
    expected = [real(x) for x in xs]
    for call, (g, e) in enumerate(zip(got, expected)):
        torch.testing.assert_close(g, e, msg=lambda m, call=call: f"call {call}: {m}")
    assert int(interp.weights["count"]) == 3 == int(real.count)
    torch.testing.assert_close(interp.weights["total"], real.total)
    assert int(state["count"]) == 0 and not state["total"].any()  # the bound tensors themselves stay as given


def test_interpreter_writes_an_input_the_model_writes() -> None:
    case = get_model("input_writer")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0])
    x = torch.randn(2, 4)
    x_eager = x.clone()
    out = Interpreter(ir, {})(x)
    expected = case.build_real()(x_eager)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(x, x_eager)


def test_verification_fails_when_a_state_update_is_wrong() -> None:
    case = get_model("buffer_counter")
    ir = extract_ir(case.build_meta(), case.inputs("meta")[0])
    graph = ir.graph
    wrong = graph.create_node("aten.mul.Tensor", [graph.weight("total")], {"other": 3.0}, [graph.weight("total").type])
    updates = graph.state_updates
    updates[1].value = wrong.output
    graph.set_state_updates(updates)
    ok, report = verify_ir(ir, case.build_real(), case.inputs("cpu")[0])
    assert not ok
    assert [o.name for o in report.outputs if not o.passed] == ["state @total"]


def test_large_constants_are_stored_as_bytes(tmp_path: Path) -> None:
    class BigTable(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            table = torch.tensor([i / 7.0 for i in range(5000)], device=x.device).reshape(50, 100)
            return x @ table

    ir = extract_ir(BigTable(), (torch.randn(2, 50, device="meta"),))
    path = tmp_path / "big.json"
    ir.save(path)
    loaded = load_ir(path)
    graphs = [loaded.graph, loaded.graph.init] if loaded.graph.init is not None else [loaded.graph]
    (weight,) = [w for g in graphs for w in g.weights.values() if w.kind == "constant"]
    assert isinstance(weight.data, dict) and weight.data["encoding"] == "base64"
    x = torch.randn(2, 50)
    torch.testing.assert_close(Interpreter(loaded, {})(x), BigTable()(x))


class _Leftovers(torch.nn.Module):
    """Every op canonicalize removes, each applied to a permuted (in eager: non-contiguous) value."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = torch.nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x.permute(0, 2, 1)
        a = p.contiguous().view(2, -1)
        b = p.clone().reshape(2, -1)
        c = torch.ops.aten.alias(p).to(torch.float32).type_as(p)
        d = self.drop(c.detach()).view(c.shape).reshape(c.shape).expand(c.shape)
        return a + b + d.contiguous().view(2, -1)


def test_every_canonicalize_rewrite_keeps_the_numbers() -> None:
    from torch_ir.ops.canonical import ASSERT, CANONICAL_OPS

    removable = {op_type for op_type, kind in CANONICAL_OPS.items() if kind != ASSERT}
    meta_x = torch.empty(2, 3, 4, device="meta")
    before = extract_ir(_Leftovers().eval(), (meta_x,), pipeline="none")
    after = extract_ir(_Leftovers().eval(), (meta_x,), pipeline="canonicalize")
    seen = {n.op_type for n in before.nodes} & removable
    assert {"aten.contiguous.default", "aten.clone.default", "aten.alias.default", "aten.dropout.default"} <= seen
    left = {n.op_type for n in after.nodes} & removable
    # what stays is a view that changes the shape (a reshape under value semantics)
    assert left <= {"aten.view.default", "aten.reshape.default"} and all(
        n.outputs[0].shape != n.inputs[0].shape for n in after.nodes if n.op_type in left
    )
    x = torch.randn(2, 3, 4)
    expected = _Leftovers().eval()(x)
    torch.testing.assert_close(Interpreter(before, {})(x), expected)
    torch.testing.assert_close(Interpreter(after, {})(x), expected)
