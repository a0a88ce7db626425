"""Running an IR from an untrusted file: no file system, no unbounded work, no oversized allocation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.testing.crafted_ir import crafted_document
from torch_ir import InterpreterError, load_ir, parse_graph
from torch_ir.cli import main
from torch_ir.ir.module import IR
from torch_ir.ops import side_effect_reason
from torch_ir.runtime import sandbox
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.sandbox import ExecutionPolicy


def _tensor(shape: list[Any], dtype: str = "float32") -> dict[str, Any]:
    return {"shape": shape, "dtype": dtype}


def _node(name: str, op: str, args: list[Any], attrs: dict[str, Any], type_: dict[str, Any] | None) -> dict[str, Any]:
    outputs = [{"name": name, "type": type_}]
    return {"name": name, "op": op, "args": args, "attrs": attrs, "outputs": outputs, "meta": {}}


def _from_file_ir(tmp_path: Path, victim: Path) -> Path:
    nodes = [
        _node(
            "f",
            "aten.from_file.default",
            [],
            {"filename": str(victim), "shared": True, "size": 4, "dtype": "uint8"},
            _tensor([4], "uint8"),
        ),
        _node("g", "aten.fill_.Scalar", ["%f"], {"value": 0}, _tensor([4], "uint8")),
    ]
    path = tmp_path / "from_file.json"
    path.write_text(json.dumps(crafted_document(nodes, [], ["%g"])))
    return path


def test_from_file_is_refused_and_the_file_is_untouched(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"keep")
    path = _from_file_ir(tmp_path, victim)
    ir = load_ir(path)  # loading runs nothing
    with pytest.raises(InterpreterError, match=r"node f \(aten\.from_file\.default\) is refused.*allow-list"):
        Interpreter(ir)
    with pytest.raises(InterpreterError, match=r"node f \(aten\.from_file\.default\) is refused.*allow_side_effects"):
        Interpreter(ir, allow_ops=["aten::from_file", "aten::fill_"])  # named, it is still a side effect
    with pytest.raises(InterpreterError, match="refused"):
        Interpreter(path).run()
    assert victim.read_bytes() == b"keep"
    assert main(["verify", str(path), "--model", "zoo:gpt"]) == 2
    assert "refused" in capsys.readouterr().err
    assert victim.read_bytes() == b"keep"


def test_allow_side_effects_opts_in(tmp_path: Path) -> None:
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"keep")
    allow = ["aten::from_file", "aten::fill_"]
    out = Interpreter(_from_file_ir(tmp_path, victim), allow_side_effects=True, allow_ops=allow).run()
    assert out.tolist() == [0, 0, 0, 0]
    assert victim.read_bytes() == b"\0\0\0\0"  # what the opt-in allows, and why it is off by default


@pytest.mark.parametrize(
    "op_type",
    [
        "aten.save.default",
        "aten._print.default",
        "aten.manual_seed.default",
        "aten.seed.default",
        "aten.record_stream.default",
        "aten.warn.default",
        "profiler._record_function_enter_new.default",
        "_c10d_functional.all_reduce.default",
        "prim.rpc_async.default",
    ],
)
def test_side_effect_ops_are_named(op_type: str) -> None:
    assert side_effect_reason(op_type, None)


def test_schema_rule_catches_file_arguments_and_pure_ops_pass() -> None:
    assert "filename" in side_effect_reason("aten.newop.default", torch.ops.aten.from_file.default._schema)
    for op in (torch.ops.aten.add.Tensor, torch.ops.aten.linear.default, torch.ops.aten.scaled_dot_product_attention):
        overload = op if isinstance(op, torch._ops.OpOverload) else op.default
        assert side_effect_reason(str(overload).replace("::", "."), overload._schema) == ""


def _python_op_ir(tmp_path: Path, op: str, args: list[Any]) -> Path:
    path = tmp_path / "python_op.json"
    path.write_text(json.dumps(crafted_document([_node("n", op, args, {}, {"scalar": "int"})], [], ["%n"])))
    return path


@pytest.mark.parametrize(
    ("op", "args"),
    [
        ("math.factorial", [50000000]),
        ("operator.pow", [10, 1000000000]),
        ("builtins.pow", [3, 1 << 40]),
        ("operator.lshift", [1, 1 << 40]),
        ("builtins.round", [5, -(10**9)]),
        ("operator.mul", [[0], 1000000000]),
    ],
)
def test_unbounded_python_ops_are_refused_within_a_second(tmp_path: Path, op: str, args: list[Any]) -> None:
    path = _python_op_ir(tmp_path, op, args)
    start = time.perf_counter()
    with pytest.raises(InterpreterError, match=r"node n .*refused|limit"):
        Interpreter(path).run()
    assert time.perf_counter() - start < 1.0


def test_factorial_ir_is_refused_by_the_commands(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _python_op_ir(tmp_path, "math.factorial", [50000000])
    assert main(["verify", str(path), "--model", "zoo:gpt"]) == 2
    assert "refused" in capsys.readouterr().err


def test_bounded_python_ops_still_compute(tmp_path: Path) -> None:
    assert Interpreter(_python_op_ir(tmp_path, "math.factorial", [20])).run() == 2432902008176640000
    assert Interpreter(_python_op_ir(tmp_path, "operator.pow", [2, 100])).run() == 2**100
    assert Interpreter(_python_op_ir(tmp_path, "operator.mul", [6, 7])).run() == 42


def test_declared_shape_over_the_memory_budget_is_refused_before_allocation(tmp_path: Path) -> None:
    nodes = [
        _node("z", "aten.zeros.default", [], {"size": [10**9, 10**9], "dtype": "float32"}, _tensor([10**9, 10**9]))
    ]
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(crafted_document(nodes, [], ["%z"])))
    with pytest.raises(InterpreterError, match=r"node z .*f32\[1000000000,1000000000\].*memory budget"):
        Interpreter(path)
    lying = [_node("z", "aten.zeros.default", [], {"size": [10**9, 10**9], "dtype": "float32"}, _tensor([2]))]
    path.write_text(json.dumps(crafted_document(lying, [], ["%z"])))
    with pytest.raises(InterpreterError, match=r"size=\[1000000000, 1000000000\].*memory budget"):
        Interpreter(path)


def test_symbolic_shape_over_the_budget_is_refused_at_run_time() -> None:
    ir = parse_graph(
        "graph(%a: f32[s0,1], %b: f32[1,s0]) {\n"
        "  %y = aten.mul.Tensor(%a, %b) : (f32[s0,1], f32[1,s0]) -> f32[s0,s0]\n"
        "  return %y\n}"
    )
    interp = Interpreter(ir, memory_budget=1 << 20)
    assert interp(torch.ones(4, 1), torch.ones(1, 4)).shape == (4, 4)
    with pytest.raises(InterpreterError, match=r"node y .*f32\[s0,s0\].*memory budget of 1 MiB"):
        interp(torch.ones(1000, 1), torch.ones(1, 1000))


def test_memory_budget_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "physical_memory", lambda: 128 << 30)
    assert ExecutionPolicy().budget == 64 << 30
    monkeypatch.setattr(sandbox, "physical_memory", lambda: 8 << 30)
    assert ExecutionPolicy().budget == 8 << 30  # never more than the machine has
    monkeypatch.setenv("TORCH_IR_MEMORY_BUDGET", "1024")
    assert ExecutionPolicy().budget == 1024
    assert ExecutionPolicy(memory_budget=10).budget == 10


def test_opt_reads_through_the_hardened_loader(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    assert main(["opt", str(deep), "-p", "none"]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "torch-ir", "schema_version": 1, "graph": {"nodes": "x"}}))
    assert main(["opt", str(bad), "-p", "none"]) == 2


def test_dimension_expressions_are_evaluated_with_bounded_arithmetic() -> None:
    from torch_ir.ir.symbolic import evaluate_dim

    start = time.perf_counter()
    assert evaluate_dim("2**10**10", {}) is None
    assert evaluate_dim("s0**s0", {"s0": 10**6}) is None
    assert evaluate_dim("2*s0+1", {"s0": 3}) == 7 and evaluate_dim("2**10", {}) == 1024
    assert evaluate_dim("Max(1, s0)", {"s0": 0}) == 1
    assert time.perf_counter() - start < 1.0


def test_in_place_ops_never_write_the_callers_tensors() -> None:
    ir = parse_graph(
        "graph(%x: f32[2,2]) {\n"
        "  weight @w : f32[2,2] parameter\n"
        "  weight @u : f32[2,2] parameter\n"
        "  weight @b : f32[2,2] parameter\n"
        "  %v = aten.view.default(@w, [4]) : (f32[2,2]) -> f32[4]\n"
        "  %f = aten.fill_.Scalar(%v) {value=0} : (f32[4]) -> f32[4]\n"
        "  %a = aten.add_.Tensor(%x, @u) {alpha=1} : (f32[2,2], f32[2,2]) -> f32[2,2]\n"
        "  %s = aten.add.Tensor(%a, @w) {alpha=1} : (f32[2,2], f32[2,2]) -> f32[2,2]\n"
        "  %y = aten.mul.Tensor(%s, @b) : (f32[2,2], f32[2,2]) -> f32[2,2]\n"
        "  return %y\n}"
    )
    w, u, b, x = torch.ones(2, 2), torch.full((2, 2), 2.0), torch.ones(2, 2), torch.full((2, 2), 3.0)
    interp = Interpreter(ir, {"w": w, "u": u, "b": b})
    assert interp(x).tolist() == [[5.0, 5.0], [5.0, 5.0]]  # w was zeroed inside the run, x + u = 5
    assert w.tolist() == [[1.0, 1.0], [1.0, 1.0]] and x.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert b.data_ptr() == interp.weights["b"].data_ptr()  # what no in-place op can reach is not copied


def test_opt_runs_no_side_effect_op_and_no_unbounded_python_op(tmp_path: Path) -> None:
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"keep")
    path = _from_file_ir(tmp_path, victim)
    doc = json.loads(path.read_text())
    doc["graph"]["nodes"][0]["attrs"]["device"] = "cpu"
    doc["graph"]["nodes"].append(_node("n", "math.factorial", [50000000], {}, {"scalar": "int"}))
    doc["graph"]["outputs"].append("%n")
    path.write_text(json.dumps(doc))
    start = time.perf_counter()
    assert main(["opt", str(path), "-p", "annotate-shapes", "-o", str(tmp_path / "out.json")]) == 0
    assert time.perf_counter() - start < 5.0
    assert victim.read_bytes() == b"keep"


def test_replaying_a_reproducer_imports_no_plugin_the_user_did_not_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "evil_plugin_for_test.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ir_doc = json.loads((_python_op_ir(tmp_path, "operator.add", [1, 2])).read_text())
    repro = tmp_path / "repro.json"
    repro.write_text(
        json.dumps(
            {
                "format": "torch-ir-reproducer",
                "pipeline": "canonicalize",
                "plugins": ["evil_plugin_for_test"],
                "ir": ir_doc,
                "failed_pass": "canonicalize",
            }
        )
    )
    from torch_ir.passes.manager import REPRODUCER_FORMAT

    assert REPRODUCER_FORMAT == "torch-ir-reproducer"
    assert main(["opt", "--replay", str(repro)]) == 2
    assert "--plugin evil_plugin_for_test" in capsys.readouterr().err and not marker.exists()
    assert main(["opt", "--replay", str(repro), "--plugin", "evil_plugin_for_test", "-p", "canonicalize"]) == 0
    assert marker.exists()


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"size": [2], "dtype": "nonexistent"}, "attribute dtype: attribute value 'nonexistent' is not a torch dtype"),
        ({"size": [2], "dtype": "load"}, "'load' is not a torch dtype"),
        ({"size": [2], "layout": "nope"}, "'nope' is not a torch layout"),
        ({"memory_format": "__class__"}, "'__class__' is not a torch memory_format"),
    ],
)
def test_enum_attributes_must_name_torch_enums(tmp_path: Path, attrs: dict[str, Any], message: str) -> None:
    op, args = ("aten.zeros.default", []) if "size" in attrs else ("aten.clone.default", ["%x"])
    doc = crafted_document([_node("y", op, args, attrs, _tensor([2]))], [{"name": "x", "type": _tensor([2])}], ["%y"])
    path = tmp_path / "enum.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InterpreterError, match=rf"node y \({op}\): .*{message}"):
        Interpreter(path)


def test_dry_run_refuses_a_value_whose_declared_type_lies(tmp_path: Path) -> None:
    ir = parse_graph(
        "graph(%a: f32[1000,1], %b: f32[1,1000]) {\n"
        "  %y = aten.mul.Tensor(%a, %b) : (f32[1000,1], f32[1,1000]) -> f32[1]\n"
        "  return %y\n}"
    )
    a, b = torch.ones(1000, 1), torch.ones(1, 1000)
    with pytest.raises(InterpreterError, match=r"node y .*would be float32\[1000, 1000\].*memory budget of 1 MiB"):
        Interpreter(ir, memory_budget=1 << 20, dry_run=True)(a, b)
    with pytest.raises(InterpreterError, match=r"node y .*live at once, over the memory budget of 1 MiB"):
        Interpreter(ir, memory_budget=1 << 20)(a, b)  # without it, the meter sees the result only once it exists
    arange = parse_graph(
        'graph() {\n  %r = aten.arange.default() {end=100000000, dtype="float32"} : () -> f32[1]\n  return %r\n}'
    )
    IR(arange).save(tmp_path / "lying.json")
    interp = Interpreter(tmp_path / "lying.json", memory_budget=4 << 20)  # from a file: dry run by default
    with pytest.raises(InterpreterError, match=r"node r .*would be float32\[100000000\]"):
        interp()


def test_dry_run_leaves_honest_irs_and_data_dependent_ops_alone() -> None:
    ir = parse_graph(
        "graph(%x: f32[6]) {\n"
        "  %m = aten.gt.Scalar(%x) {other=0} : (f32[6]) -> i1[6]\n"
        "  %n = aten.nonzero.default(%m) : (i1[6]) -> i64[u0,1]\n"
        "  %y = aten.relu.default(%x) : (f32[6]) -> f32[6]\n"
        "  return %y, %n\n}"
    )
    x = torch.tensor([1.0, -1.0, 2.0, -2.0, 3.0, -3.0])
    y, n = Interpreter(ir, dry_run=True)(x)
    assert y.tolist() == [1.0, 0.0, 2.0, 0.0, 3.0, 0.0] and n.flatten().tolist() == [0, 2, 4]
