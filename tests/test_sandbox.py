"""Running an IR from an untrusted file: no file system, no unbounded work, no oversized allocation."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.testing.crafted_ir import crafted_document
from torch_ir import InterpreterError, load_ir, parse_graph
from torch_ir.cli import main
from torch_ir.ir.module import IR
from torch_ir.ir.types import TensorType
from torch_ir.ops import side_effect_reason
from torch_ir.runtime import sandbox
from torch_ir.runtime.declared_types import SymbolBindings
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.sandbox import ExecutionPolicy, budget_error, check_device


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


# Each memory check counts bytes, not elements: a value of exactly the budget runs, one byte less refuses it.
ITEMSIZES = [("float32", "f32", 4), ("float64", "f64", 8), ("float16", "f16", 2), ("int64", "i64", 8)]


def _refused_below(nbytes: int, run: Any) -> None:
    with pytest.raises(InterpreterError, match=r"memory budget"):
        run(nbytes - 1)
    run(nbytes)


@pytest.mark.parametrize(("dtype", "short", "itemsize"), ITEMSIZES)
def test_static_declared_result_is_measured_in_bytes(dtype: str, short: str, itemsize: int) -> None:
    ir = parse_graph(
        f"graph(%x: {short}[250]) {{\n  %y = aten.neg.default(%x) : ({short}[250]) -> {short}[250]\n  return %y\n}}"
    )
    x = torch.ones(250, dtype=getattr(torch, dtype))
    _refused_below(250 * itemsize, lambda budget: Interpreter(ir, memory_budget=budget)(x))


@pytest.mark.parametrize(("dtype", "short", "itemsize"), ITEMSIZES)
def test_size_attribute_is_measured_in_bytes(dtype: str, short: str, itemsize: int) -> None:
    # the declared type lies (one element): only the size attribute tells how much zeros allocates
    ir = parse_graph(
        f'graph() {{\n  %z = aten.zeros.default() {{size=[10, 25], dtype="{dtype}"}} : () -> {short}[1]\n'
        "  return %z\n}"
    )
    _refused_below(250 * itemsize, lambda budget: Interpreter(ir, memory_budget=budget))
    untyped = parse_graph("graph() {\n  %z = aten.zeros.default() {size=[10, 25]} : () -> f32[1]\n  return %z\n}")
    _refused_below(250 * 4, lambda budget: Interpreter(untyped, memory_budget=budget))  # torch's default: float32


@pytest.mark.parametrize(("dtype", "short", "itemsize"), ITEMSIZES)
def test_symbolic_declared_result_is_measured_in_bytes(dtype: str, short: str, itemsize: int) -> None:
    ir = parse_graph(
        f"graph(%a: {short}[s0,1], %b: {short}[1,s0]) {{\n"
        f"  %y = aten.mul.Tensor(%a, %b) : ({short}[s0,1], {short}[1,s0]) -> {short}[s0,s0]\n  return %y\n}}"
    )
    a, b = torch.ones(20, 1, dtype=getattr(torch, dtype)), torch.ones(1, 20, dtype=getattr(torch, dtype))
    _refused_below(400 * itemsize, lambda budget: Interpreter(ir, memory_budget=budget)(a, b))


@pytest.mark.parametrize(("dtype", "short", "itemsize"), ITEMSIZES)
def test_dry_run_measures_the_true_result_in_bytes(dtype: str, short: str, itemsize: int) -> None:
    ir = parse_graph(
        f"graph(%a: {short}[20,1], %b: {short}[1,20]) {{\n"
        f"  %y = aten.mul.Tensor(%a, %b) : ({short}[20,1], {short}[1,20]) -> {short}[1]\n  return %y\n}}"
    )
    a, b = torch.ones(20, 1, dtype=getattr(torch, dtype)), torch.ones(1, 20, dtype=getattr(torch, dtype))
    _refused_below(400 * itemsize, lambda budget: Interpreter(ir, memory_budget=budget, dry_run=True)(a, b))


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
    monkeypatch.delitem(sys.modules, "evil_plugin_for_test", raising=False)  # imported by an earlier run in-process
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


# ------------------------------------------------------------- what mutation testing found untested


def test_budget_errors_say_sizes_in_binary_units() -> None:
    node = parse_graph("graph(%x: f32[1]) {\n  %y = aten.neg.default(%x) : (f32[1]) -> f32[1]\n  return %y\n}").nodes[0]
    sizes = [(512, "512 B"), (1536, "1.5 KiB"), (3 << 20, "3 MiB"), (5 << 30, "5 GiB"), (7 << 40, "7 TiB")]
    sizes += [(2 << 50, "2 PiB"), (6 << 60, "6 EiB"), (9000 << 60, "9e+03 EiB"), (10**40, "1.000e+40 B")]
    for nbytes, text in sizes:
        message = str(budget_error(node, "result %y", nbytes, 1024))
        assert f"result %y, {text}, over the memory budget of 1 KiB" in message, message
        assert "TORCH_IR_MEMORY_BUDGET if the IR is meant to be this large" in message


def test_memory_budget_environment_must_be_a_positive_integer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "physical_memory", lambda: 128 << 30)  # default: 64 GiB, less on a smaller machine
    for text, budget in [("0", 64 << 30), ("-5", 64 << 30), ("12GB", 64 << 30), (" 1 ", 1), ("2048", 2048)]:
        monkeypatch.setenv("TORCH_IR_MEMORY_BUDGET", text)
        assert ExecutionPolicy().budget == budget, text
    monkeypatch.delenv("TORCH_IR_MEMORY_BUDGET")
    assert ExecutionPolicy().budget == 64 << 30


def test_empty_values_take_no_memory_whatever_their_other_dimensions() -> None:
    empty_size = parse_graph(
        'graph() {\n  %z = aten.zeros.default() {size=[0, 1000000000000], dtype="float32"}'
        " : () -> f32[0,1000000000000]\n  return %z\n}"
    )
    assert Interpreter(empty_size, memory_budget=1).run().shape == (0, 10**12)
    empty_symbol = parse_graph(
        "graph(%a: f32[s0,1]) {\n"
        "  %y = aten.expand.default(%a) {size=[-1, 1000000000000]} : (f32[s0,1]) -> f32[s0,1000000000000]\n"
        "  return %y\n}"
    )
    interp = Interpreter(empty_symbol, memory_budget=1024)
    assert interp(torch.ones(0, 1)).shape == (0, 10**12)
    with pytest.raises(InterpreterError, match="memory budget"):
        interp(torch.ones(1, 1))


def test_a_size_attribute_that_is_not_a_list_of_ints_is_left_to_the_op() -> None:
    ir = parse_graph(
        'graph() {\n  %z = aten.zeros.default() {size=[2, "three"], dtype="float32"} : () -> f32[2,3]\n  return %z\n}'
    )
    interp = Interpreter(ir, memory_budget=1024)  # planning does not trip over the string
    with pytest.raises(InterpreterError, match=r"node z \(aten\.zeros\.default\) failed"):
        interp.run()


def test_complex_values_count_both_halves() -> None:
    ir = parse_graph(
        "graph(%a: c64[s0,1], %b: c64[1,s0]) {\n"
        "  %y = aten.mul.Tensor(%a, %b) : (c64[s0,1], c64[1,s0]) -> c64[s0,s0]\n  return %y\n}"
    )
    a, b = torch.ones(10, 1, dtype=torch.complex64), torch.ones(1, 10, dtype=torch.complex64)
    _refused_below(100 * 8, lambda budget: Interpreter(ir, memory_budget=budget)(a, b))


def test_the_dry_run_runs_again_for_each_new_input_shape() -> None:
    ir = parse_graph(
        "graph(%a: f32[s0,1], %b: f32[1,s0]) {\n"
        "  %y = aten.mul.Tensor(%a, %b) : (f32[s0,1], f32[1,s0]) -> f32[1]\n  return %y\n}"
    )
    interp = Interpreter(ir, memory_budget=1 << 20, dry_run=True)
    assert interp(torch.ones(4, 1), torch.ones(1, 4)).shape == (4, 4)
    with pytest.raises(InterpreterError, match=r"node y .*would be float32\[1000, 1000\]"):
        interp(torch.ones(1000, 1), torch.ones(1, 1000))


def test_the_dry_run_goes_on_past_a_node_it_cannot_run_with_its_declared_type() -> None:
    # nonzero's size depends on the data, so the fake run takes its declared type (int64) and goes on
    after_nonzero = parse_graph(
        "graph(%x: f32[3]) {\n"
        "  %n = aten.nonzero.default(%x) : (f32[3]) -> i64[3,1]\n"
        "  %e = aten.expand.default(%n) {size=[3, 1000000]} : (i64[3,1]) -> i64[1]\n"
        "  return %e\n}"
    )
    x = torch.ones(3)
    assert Interpreter(after_nonzero, memory_budget=24_000_000)(x).shape == (3, 10**6)  # no dry run: declared
    with pytest.raises(InterpreterError, match=r"node e .*would be int64\[3, 1000000\]"):
        Interpreter(after_nonzero, memory_budget=16_000_000, dry_run=True)(x)  # 24 MB as int64, 12 MB as float32
    assert Interpreter(after_nonzero, memory_budget=24_000_000, dry_run=True)(x).shape == (3, 10**6)


def test_a_python_op_with_literal_operands_is_refused_while_planning() -> None:
    ir = parse_graph("graph() {\n  %n = math.factorial(50000000) : () -> int\n  return %n\n}")
    start = time.monotonic()
    with pytest.raises(InterpreterError, match=r"node n \(math\.factorial\) is refused"):
        Interpreter(ir)  # no call needed
    assert time.monotonic() - start < 5


def test_an_op_refused_by_its_schema_alone_is_refused_by_the_interpreter() -> None:
    ir = parse_graph(
        "graph(%x: f32[4]) {\n  %s = aten.set_.source_Storage(%x, %x) : (f32[4], f32[4]) -> f32[4]\n  return %s\n}"
    )
    assert side_effect_reason("aten.set_.source_Storage") == ""  # not refused by name
    with pytest.raises(InterpreterError, match=r"node s \(aten\.set_\.source_Storage\) is refused: .*Storage"):
        Interpreter(ir)


def test_a_view_taken_through_a_python_op_is_still_protected() -> None:
    ir = parse_graph(
        "graph(%x: f32[2,2]) {\n"
        "  %p = operator.getitem(%x, 0) : (f32[2,2]) -> f32[2]\n"
        "  %w = aten.add_.Tensor(%p, 10.0) {alpha=1} : (f32[2]) -> f32[2]\n"
        "  return %w\n}"
    )
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert Interpreter(ir)(x).tolist() == [11.0, 12.0]  # x[0] is a view of x: the run wrote its own copy
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_inputs_no_op_writes_are_not_copied() -> None:
    ir = parse_graph(
        "graph(%x: f32[2], %y: f32[2]) {\n"
        "  %b = aten.mul.Tensor(%y, 2.0) : (f32[2]) -> f32[2]\n"
        "  %a = aten.add_.Tensor(%x, %b) {alpha=1} : (f32[2], f32[2]) -> f32[2]\n  return %a\n}"
    )
    x, y = torch.ones(2), torch.ones(2)
    interp = Interpreter(ir, keep=["x", "y"])
    assert interp(x, y).tolist() == [3.0, 3.0]
    assert interp.kept["y"] is y and interp.kept["x"] is not x and x.tolist() == [1.0, 1.0]


def test_check_run_walks_the_graph_when_no_plan_collected_the_symbolic_types() -> None:
    graph = parse_graph(
        "graph(%a: f32[s0,1], %b: f32[1,s0]) {\n"
        "  %y = aten.mul.Tensor(%a, %b) : (f32[s0,1], f32[1,s0]) -> f32[s0,s0]\n  return %y\n}"
    )
    policy = ExecutionPolicy(memory_budget=1 << 20)
    assert policy.check_run(graph, [torch.ones(4, 1), torch.ones(1, 4)]).values == {"s0": 4}
    with pytest.raises(InterpreterError, match=r"node y .*f32\[s0,s0\]"):
        policy.check_run(graph, [torch.ones(1000, 1), torch.ones(1, 1000)])


def test_check_device_answers_for_devices_this_machine_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    check_device(torch.device("cpu"))
    check_device(torch.device("meta"))
    with pytest.raises(InterpreterError, match=r"device mps is not available to this torch .*'cpu'.*mps support"):
        if torch.backends.mps.is_available():
            pytest.skip("this machine has an mps device")
        check_device(torch.device("mps"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_device(torch.device("cuda"))
    check_device(torch.device("cuda:1"))
    with pytest.raises(InterpreterError, match=r"device cuda:2 does not exist: this machine has 2 cuda device\(s\)"):
        check_device(torch.device("cuda:2"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InterpreterError, match=r"device cuda:0 is not available"):
        check_device(torch.device("cuda:0"))

    def broken() -> bool:
        raise RuntimeError("driver not loaded")

    monkeypatch.setattr(torch.cuda, "is_available", broken)
    with pytest.raises(InterpreterError, match="device cuda is not available"):
        check_device(torch.device("cuda"))


def test_symbol_bindings_check_every_dimension_and_say_what_differs() -> None:
    bindings = SymbolBindings()
    declared = TensorType(("s0", 4), "float32")
    assert bindings.mismatch(declared, torch.ones(3, 5)) == (
        "declared f32[s0,4], got float32[3, 5]: dimension 1 is 5, not 4"
    )
    assert bindings.values == {"s0": 3}
    assert bindings.mismatch(TensorType(("s0",), "float32"), torch.ones(4)) == (
        "declared f32[s0], got float32[4]: dimension 0 is 4, not 3 (s0 = 3)"
    )
    assert bindings.mismatch(TensorType(("2*s0",), "float32"), torch.ones(6)) == ""
    assert bindings.mismatch(declared, 7) == "declared f32[s0,4], got a int"
    assert bindings.mismatch(TensorType((3, 4), "float16"), torch.ones(3, 4)) == (
        "declared f16[3,4], got float32[3, 4]: dtype float32, not float16"
    )
