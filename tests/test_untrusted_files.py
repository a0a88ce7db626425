"""IR files written by an attacker: each attack of the threat model is refused or bounded with a clean error.

Loading, reporting and ``opt`` run no code from a file and stay bounded; running one (``verify``, ``run``,
``Runner``) runs only allow-listed ops, within limits that add up, in a worker process (the worker's own
limits are tested in ``tests/test_worker.py``). Every test checks that no file appears outside the output
the command names, and that the error is a ``TorchIRError`` (exit status 2 on the command line).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.testing.crafted_ir import crafted_document, crafted_module
from torch_ir import InterpreterError, IRError, SerializationError, load_ir, parse_graph
from torch_ir.cli import main
from torch_ir.ir.module import IR
from torch_ir.ir.symbolic import parse_dim
from torch_ir.runtime.interpreter import Interpreter


def _tensor(shape: list[Any], dtype: str = "float32") -> dict[str, Any]:
    return {"shape": shape, "dtype": dtype}


def _node(name: str, op: str, args: list[Any], attrs: dict[str, Any], type_: dict[str, Any] | None) -> dict[str, Any]:
    return {"name": name, "op": op, "args": args, "attrs": attrs, "outputs": [{"name": name, "type": type_}]}


def _write(tmp_path: Path, doc: dict[str, Any], name: str = "attack.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _saved(tmp_path: Path, text: str, name: str = "attack.json") -> Path:
    """The graph of ``text`` saved as a file: what loading it gives is untrusted."""
    path = tmp_path / name
    IR(parse_graph(text)).save(path)
    return path


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _marker_payload(name: str) -> str:
    """A dimension that, were it evaluated as Python, would create the file ``name`` in the current folder:
    only letters, digits, ``+`` and parentheses, in under 256 characters, which the old format let through."""
    code = f"open({name!r},'w')"
    return "exec(" + "+".join(f"chr({ord(c)})" for c in code) + ")"


# ------------------------------------------------------------------ loading, reports and opt: no code


@pytest.mark.parametrize("where", ["input", "node"])
def test_a_dimension_that_is_python_code_never_runs_under_opt(
    tmp_path: Path, where: str, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    dim = _marker_payload(marker.name)
    assert len(dim) < 256
    shape = [dim] if where == "input" else [2]
    node = _node("y", "aten.relu.default", ["%x"], {}, _tensor([dim]))
    doc = crafted_document([node], [{"name": "x", "type": _tensor(shape)}], ["%y"])
    path = _write(tmp_path, doc)
    before = _files(tmp_path)
    assert main(["opt", str(path), "-o", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert "unknown function 'exec'" in err and "Traceback" not in err
    assert not marker.exists() and _files(tmp_path) == before
    with pytest.raises(IRError, match="unknown function 'exec'"):
        parse_graph(f"graph(%x: f32[{dim}]) {{\n  return %x\n}}")


def test_dimensions_with_towers_of_powers_are_refused_at_load(tmp_path: Path, capsys: Any) -> None:
    for dim in ("9**9**9**9", "2**(2**70)", "s0**s0", "2**65", "9" * 30, "(" * 40 + "1" + ")" * 40):
        doc = crafted_document([], [{"name": "x", "type": _tensor([dim])}], ["%x"])
        path = _write(tmp_path, doc)
        start = time.perf_counter()
        assert main(["opt", str(path), "-o", str(tmp_path / "out.json")]) == 2
        assert main(["report", str(path), "--stats"]) == 2
        assert time.perf_counter() - start < 10
        err = capsys.readouterr().err
        assert "dimension" in err and "Traceback" not in err, dim
    assert not (tmp_path / "out.json").exists()


def test_the_grammar_parses_what_torch_prints_and_evaluates_it_bounded() -> None:
    for text, bindings, value in [
        ("(s0//2)", {"s0": 7}, 3),
        ("((s0 + 1)//2)", {"s0": 7}, 4),
        ("Max(1, s0 - 1)", {"s0": 0}, 1),
        ("Mod(s0, 3)", {"s0": 7}, 1),
        ("CeilToInt(IntTrueDiv(s0, 2))", {"s0": 7}, 4),
        ("2*s0**2 + s1", {"s0": 3, "s1": 1}, 19),
        ("ModularIndexing(s0, 2, 4)", {"s0": 13}, 2),
    ]:
        assert parse_dim(text).evaluate(bindings) == value, text
    huge = parse_dim("s0**64*s0**64")
    assert huge.evaluate({"s0": 2**40}) is None  # past the magnitude bound: unknown, not a bignum
    assert parse_dim("2*s").same_value_as("s+s") and not parse_dim("s").same_value_as("2*s")


def test_text_form_and_annotate_shapes_use_the_parsed_expressions(tmp_path: Path) -> None:
    path = _saved(
        tmp_path,
        "graph(%x: f32[s0,4], %y: f32[4,s0]) {\n"
        "  %t = aten.t.default(%y) : (f32[4,s0]) -> f32[s0,4]\n"
        "  %a = aten.add.Tensor(%x, %t) {alpha=1} : (f32[s0,4], f32[s0,4]) -> f32[s0,4]\n"
        "  %c = aten.cat.default([%x, %a]) {dim=0} : (f32[s0,4], f32[s0,4]) -> f32[2*s0,4]\n"
        "  return %c\n}",
    )
    out = tmp_path / "out.json"
    assert main(["opt", str(path), "-p", "annotate-shapes", "-o", str(out)]) == 0
    shape = load_ir(out).graph.outputs[0].type.shape
    assert shape[0] == "2*s0" and shape[0].evaluate({"s0": 5}) == 10


def test_a_reproducer_never_chooses_passes_imports_plugins_or_writes_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "evil_plugin_for_replay.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    dump = tmp_path / "dumped"
    (tmp_path / "evil.toml").write_text(
        f'plugins = ["evil_plugin_for_replay"]\ndump-dir = "{dump}"\nreproducer = "{tmp_path / "again.json"}"\n'
        'pipeline = ["canonicalize"]\n'
    )
    ir = crafted_document([], [{"name": "x", "type": _tensor([2])}], ["%x"])
    repro = _write(
        tmp_path,
        {
            "format": "torch-ir-reproducer",
            "pipeline": str(tmp_path / "evil.toml"),
            "plugins": ["evil_plugin_for_replay"],
            "ir": ir,
            "failed_pass": "canonicalize",
        },
        "repro.json",
    )
    before = _files(tmp_path)
    assert main(["opt", "--replay", str(repro)]) == 2
    err = capsys.readouterr().err
    assert "to replay it" in err and f"-p {tmp_path / 'evil.toml'}" in err and "--plugin evil_plugin_for_replay" in err
    assert not marker.exists() and not dump.exists() and _files(tmp_path) == before
    out = tmp_path / "out.json"
    assert main(["opt", "--replay", str(repro), "-p", "canonicalize", "-o", str(out)]) == 0
    assert "not given here" in capsys.readouterr().err
    assert not marker.exists() and not dump.exists() and _files(tmp_path) == before | {"out.json"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("stages", [{"stage": "build", "seconds": int("9" * 400)}], r"\$\.stages\[0\]\.seconds: number out of range"),
        ("model", "x" * 2000, r"\$\.model"),
    ],
)
def test_absurd_numbers_and_names_in_a_file_are_serialization_errors(
    tmp_path: Path, field: str, value: Any, message: str, capsys: Any
) -> None:
    doc = crafted_document([], [{"name": "x", "type": _tensor([2])}], ["%x"])
    doc["schema_version"] = 5
    doc[field] = value
    path = _write(tmp_path, doc)
    with pytest.raises(SerializationError, match=message):
        load_ir(path)
    assert main(["report", str(path)]) == 2 and "Traceback" not in capsys.readouterr().err


def test_opt_runs_no_torchscript_string_op_to_learn_its_type(tmp_path: Path) -> None:
    node = _node("z", "aten.zfill.default", [{"literal": "x"}], {"width": 4_000_000_000}, None)
    path = _write(tmp_path, crafted_document([node], [], ["%z"]))
    start = time.perf_counter()
    assert main(["opt", str(path), "-p", "annotate-shapes", "-o", str(tmp_path / "out.json")]) == 2
    assert time.perf_counter() - start < 10
    with pytest.raises(InterpreterError, match=r"node z \(aten\.zfill\.default\) is refused: .*allow-list"):
        Interpreter(path)


# ------------------------------------------------------------------ running: the allow-list


@pytest.mark.parametrize(
    "op",
    [
        "inductor._reinterpret_tensor.default",
        "prims.view_of.default",
        "profiler._record_function_enter_new.default",
        "aten.zfill.default",
        "aten.bincount.default",
        "nosuchlib.op.default",
    ],
)
def test_ops_off_the_allow_list_are_refused_from_a_file(tmp_path: Path, op: str) -> None:
    path = _write(
        tmp_path,
        crafted_document([_node("y", op, ["%x"], {}, _tensor([4]))], [{"name": "x", "type": _tensor([4])}], ["%y"]),
    )
    with pytest.raises(InterpreterError, match=r"node y .* is refused: an IR read from a file runs only ops"):
        Interpreter(path)
    name = op.split(".")[0] + "::" + op.split(".")[1]
    with pytest.raises(InterpreterError, match=f"--allow-op {name}"):
        Interpreter(load_ir(path))


def test_a_reviewed_library_op_is_defined_on_demand_and_runs_from_a_file(tmp_path: Path) -> None:
    """transformers' MoE op runs from a file in a process that never imported transformers (the allow-list
    imports the one module that defines it); another op of the same namespace stays refused."""
    pytest.importorskip("transformers")
    inputs = [{"name": "x", "type": _tensor([3, 2])}, {"name": "w", "type": _tensor([2, 2, 2])}]
    inputs.append({"name": "offs", "type": _tensor([2], "int64")})
    node = _node("y", "transformers.grouped_mm_fallback.default", ["%x", "%w", "%offs"], {}, _tensor([3, 2]))
    ok = _write(tmp_path, crafted_document([node], inputs, ["%y"]), "moe.json")
    other = _node("y", "transformers.no_such_op.default", ["%x", "%w", "%offs"], {}, _tensor([3, 2]))
    refused = _write(tmp_path, crafted_document([other], inputs, ["%y"]), "other.json")
    code = (
        "import sys, torch\n"
        "from torch_ir.runtime.interpreter import Interpreter\n"
        "from torch_ir.errors import InterpreterError\n"
        "assert 'transformers' not in sys.modules\n"
        "x, w = torch.arange(6.0).reshape(3, 2), torch.stack([torch.eye(2), 2 * torch.eye(2)])\n"
        f"y = Interpreter({str(ok)!r})(x, w, torch.tensor([1, 3]))\n"
        "assert torch.equal(y, torch.cat([x[:1], 2 * x[1:]])), y\n"
        "try:\n"
        f"    Interpreter({str(refused)!r})\n"
        "except InterpreterError as exc:\n"
        "    assert 'is refused' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('transformers.no_such_op ran')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_reinterpret_tensor_allowed_by_name_is_still_bounds_checked(tmp_path: Path) -> None:
    pytest.importorskip("torch._inductor")
    import torch._inductor.lowering  # registers inductor's ops

    def doc(offset: int) -> dict[str, Any]:
        attrs = {"size": [4], "stride": [1], "offset_increment": offset}
        node = _node("y", "inductor._reinterpret_tensor.default", ["%x"], attrs, _tensor([4]))
        return crafted_document([node], [{"name": "x", "type": _tensor([4])}], ["%y"])

    allow = ["inductor::_reinterpret_tensor"]
    ok = Interpreter(_write(tmp_path, doc(0), "ok.json"), allow_ops=allow)
    assert ok(torch.arange(4.0)).tolist() == [0.0, 1.0, 2.0, 3.0]
    leak = Interpreter(_write(tmp_path, doc(1 << 20), "leak.json"), allow_ops=allow)
    with pytest.raises(InterpreterError, match=r"node y .*outside its operand's storage.*reach element"):
        leak(torch.arange(4.0))


def test_as_strided_past_its_storage_is_refused_before_it_runs(tmp_path: Path) -> None:
    path = _saved(
        tmp_path,
        "graph(%x: f32[4]) {\n"
        "  %y = aten.as_strided.default(%x) {size=[4], stride=[1000000], storage_offset=0} : (f32[4]) -> f32[4]\n"
        "  return %y\n}",
    )
    with pytest.raises(InterpreterError, match=r"node y .*outside its operand's storage: sizes \[4\], strides"):
        Interpreter(path)(torch.zeros(4))


def test_a_write_through_an_unannotated_view_never_reaches_the_callers_weight(tmp_path: Path) -> None:
    text = (
        "graph(%x: f32[4]) {\n"
        "  weight @w : f32[2,2] parameter\n"
        "  %v = aten._unsafe_view.default(@w) {size=[4]} : (f32[2,2]) -> f32[4]\n"
        "  %a = aten.add_.Tensor(%v, %x) {alpha=1} : (f32[4], f32[4]) -> f32[4]\n"
        "  %s = aten.sum.default(@w) {dtype=null} : (f32[2,2]) -> f32[]\n"
        "  return %a, %s\n}"
    )
    weight = torch.ones(2, 2)
    a, s = Interpreter(load_ir(_saved(tmp_path, text)), {"w": weight}, allow_ops=["aten::add_"])(torch.ones(4))
    assert a.tolist() == [2.0] * 4 and float(s) == 8.0  # the run sees its own write, as eager would
    assert weight.tolist() == [[1.0, 1.0], [1.0, 1.0]]  # the caller's tensor does not


def test_a_write_the_registry_misses_is_refused_when_it_is_about_to_happen(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch_ir.ops import registry
    from torch_ir.ops.info import OpInfo

    described = OpInfo.may_alias.func  # the registry forgets that _unsafe_view hands back its operand
    monkeypatch.setattr(OpInfo, "may_alias", property(lambda self: self.name != "_unsafe_view" and described(self)))
    registry.op_info.cache_clear()
    try:
        ir = parse_graph(
            "graph(%x: f32[4]) {\n"
            "  weight @w : f32[2,2] parameter\n"
            "  %v = aten._unsafe_view.default(@w) {size=[4]} : (f32[2,2]) -> f32[4]\n"
            "  %a = aten.add_.Tensor(%v, %x) {alpha=1} : (f32[4], f32[4]) -> f32[4]\n"
            "  return %a\n}"
        )
        weight = torch.ones(2, 2)
        with pytest.raises(
            InterpreterError, match=r"node a \(aten\.add_\.Tensor\) is refused: it would write into weight @w"
        ):
            Interpreter(ir, {"w": weight})(torch.ones(4))
        assert weight.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    finally:
        registry.op_info.cache_clear()


# ------------------------------------------------------------------ running: limits that add up


def test_bincount_with_a_huge_minlength_is_sized_before_it_allocates(tmp_path: Path) -> None:
    path = _saved(
        tmp_path,
        "graph(%x: i64[3]) {\n"
        "  %b = aten.bincount.default(%x) {weights=null, minlength=100000000} : (i64[3]) -> i64[4]\n"
        "  return %b\n}",
    )
    with pytest.raises(InterpreterError, match="allow-list"):
        Interpreter(path)
    interp = Interpreter(path, allow_ops=["aten::bincount"], memory_budget=64 << 20)
    with pytest.raises(InterpreterError, match=r"node b .*100000000 elements.*memory budget of 64 MiB"):
        interp(torch.tensor([0, 1, 2]))


def test_repeat_interleave_of_a_constant_is_sized_before_it_allocates(tmp_path: Path) -> None:
    doc = crafted_document(
        [_node("r", "aten.repeat_interleave.Tensor", ["@c"], {"output_size": None}, _tensor([3], "int64"))],
        [],
        ["%r"],
    )
    doc["graph"]["weights"] = [
        {"name": "c", "type": _tensor([2], "int64"), "kind": "constant", "persistent": False, "data": [10**8, 10**8]}
    ]
    path = _write(tmp_path, doc)
    interp = Interpreter(path, {}, allow_ops=["aten::repeat_interleave"], memory_budget=64 << 20)
    with pytest.raises(InterpreterError, match=r"node r .*200000000 elements.*memory budget"):
        interp()


def test_a_size_made_from_data_is_checked_once_it_is_known(tmp_path: Path) -> None:
    path = _saved(
        tmp_path,
        "graph(%x: i64[]) {\n"
        "  %n = aten.item.default(%x) : (i64[]) -> int\n"
        '  %o = aten.ones.default([%n]) {dtype="float32", layout=null, device=null, pin_memory=null}'
        " : (int) -> f32[2]\n"
        "  return %o\n}",
    )
    interp = Interpreter(path, memory_budget=64 << 20)
    assert interp(torch.tensor(3)).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(InterpreterError, match=r"node o \(aten\.ones\.default\).* refused: .*memory budget of 64 MiB"):
        interp(torch.tensor(10**12))


def test_the_budget_counts_what_is_live_at_once() -> None:
    chain = "\n".join(
        f"  %y{i} = aten.mul.Tensor(%y{i - 1}, %x) : (f32[1000000], f32[1000000]) -> f32[1000000]" for i in range(1, 6)
    )
    keep_all = (
        "graph(%x: f32[1000000]) {\n"
        "  %y0 = aten.neg.default(%x) : (f32[1000000]) -> f32[1000000]\n"
        f"{chain}\n  return %y0, %y1, %y2, %y3, %y4, %y5\n}}"
    )
    x = torch.ones(1_000_000)
    budget = 14 << 20  # each value is 4 MB: three fit, six do not
    with pytest.raises(InterpreterError, match=r"node y3 .*live at once.*memory budget of 14 MiB"):
        Interpreter(parse_graph(keep_all), memory_budget=budget)(x)
    only_last = keep_all.replace("return %y0, %y1, %y2, %y3, %y4, %y5", "return %y5")
    assert Interpreter(parse_graph(only_last), memory_budget=budget)(x).shape == (1_000_000,)  # freed as it goes


def test_nested_while_loops_share_one_iteration_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inner = (
        '      %z = aten.zeros.default() {size=[], dtype="int64"} : () -> i64[]\n'
        "      %j, %u = higher_order.while_loop([%z, %t], [%n]) : (i64[], i64[], i64[]) -> (i64[], i64[]) regions {\n"
        "        cond: graph(%j: i64[], %u: i64[], %n: i64[]) {\n"
        "          %lt = aten.lt.Tensor(%j, %n) : (i64[], i64[]) -> i1[]\n"
        "          return %lt\n        }\n"
        "        body: graph(%j: i64[], %u: i64[], %n: i64[]) {\n"
        "          %j1 = aten.add.Tensor(%j) {other=1, alpha=1} : (i64[]) -> i64[]\n"
        "          %u1 = aten.add.Tensor(%u) {other=1, alpha=1} : (i64[]) -> i64[]\n"
        "          return %j1, %u1\n        }\n      }\n"
    )
    text = (
        "graph(%n: i64[]) {\n"
        '  %z0 = aten.zeros.default() {size=[], dtype="int64"} : () -> i64[]\n'
        "  %i, %t = higher_order.while_loop([%z0, %z0], [%n]) : (i64[], i64[], i64[]) -> (i64[], i64[]) regions {\n"
        "    cond: graph(%i: i64[], %t: i64[], %n: i64[]) {\n"
        "      %lt = aten.lt.Tensor(%i, %n) : (i64[], i64[]) -> i1[]\n"
        "      return %lt\n    }\n"
        "    body: graph(%i: i64[], %t: i64[], %n: i64[]) {\n"
        f"{inner}"
        "      %i1 = aten.add.Tensor(%i) {other=1, alpha=1} : (i64[]) -> i64[]\n"
        "      return %i1, %u\n    }\n  }\n"
        "  return %t\n}"
    )
    interp = Interpreter(load_ir(_saved(tmp_path, text)))
    assert int(interp(torch.tensor(5))) == 25
    monkeypatch.setenv("TORCH_IR_MAX_LOOP_ITERATIONS", "1000")
    assert int(interp(torch.tensor(30))) == 900  # 930 iterations in all
    with pytest.raises(InterpreterError, match=r"limit of 1000 loop iterations per call, all loops at every depth"):
        interp(torch.tensor(40))  # 40 + 40*40 iterations: each loop alone is far below the limit


@pytest.mark.parametrize("kind", ["scan", "map"])
def test_scan_and_map_over_a_hundred_million_elements_are_refused_before_they_start(tmp_path: Path, kind: str) -> None:
    if kind == "scan":
        loop = (
            "  %c, %ys = higher_order.scan([%x], [%e], []) : (f32[1], f32[100000000,1]) -> (f32[1], f32[100000000,1]) "
            "regions {\n    combine: graph(%a: f32[1], %b: f32[1]) {\n"
            "      %s = aten.add.Tensor(%a, %b) {alpha=1} : (f32[1], f32[1]) -> f32[1]\n"
            "      return %s, %s\n    }\n  }\n  return %c\n}"
        )
    else:
        loop = (
            "  %ys = higher_order.map_impl([%e], []) : (f32[100000000,1]) -> f32[100000000,1] regions {\n"
            "    body: graph(%b: f32[1]) {\n"
            "      %s = aten.neg.default(%b) : (f32[1]) -> f32[1]\n"
            "      return %s\n    }\n  }\n  return %ys\n}"
        )
    text = (
        "graph(%x: f32[1]) {\n"
        "  %e = aten.expand.default(%x) {size=[100000000, 1], implicit=false} : (f32[1]) -> f32[100000000,1]\n" + loop
    )
    start = time.perf_counter()
    with pytest.raises(InterpreterError, match=r"100000000 more iteration\(s\) would pass the limit"):
        Interpreter(load_ir(_saved(tmp_path, text)), memory_budget=1 << 40)(torch.ones(1))
    assert time.perf_counter() - start < 20


@pytest.mark.parametrize(
    ("op", "args", "attrs"),
    [
        ("builtins.pow", [3, 2**200, None], {}),
        ("math.prod", [[2**255] * 64], {"start": 3}),
        ("builtins.pow", [3], {"exp": 2**200}),
    ],
)
def test_python_ops_with_unbounded_results_are_refused_within_a_second(
    tmp_path: Path, op: str, args: list[Any], attrs: dict[str, Any]
) -> None:
    path = _write(tmp_path, crafted_document([_node("n", op, args, attrs, {"scalar": "int"})], [], ["%n"]))
    start = time.perf_counter()
    with pytest.raises(InterpreterError, match=r"node n .*refused: its result would need about"):
        Interpreter(path)()
    assert time.perf_counter() - start < 1.0


def test_an_output_structure_of_kind_constant_runs_or_fails_cleanly(tmp_path: Path) -> None:
    doc = crafted_document([], [{"name": "x", "type": _tensor([2])}], ["%x"])
    doc["graph"]["output_structure"] = {"kind": "constant", "value": 3}
    assert Interpreter(_write(tmp_path, doc))(torch.ones(2)) == 3
    doc["graph"]["output_structure"] = {"kind": "tuple", "items": [{"kind": "output", "index": 0}] * 3}
    assert len(Interpreter(_write(tmp_path, doc))(torch.ones(2))) == 3


@pytest.mark.parametrize("length", [2**62, 2**29])
def test_program_state_over_the_budget_is_refused_before_it_is_allocated(
    tmp_path: Path, length: int, capsys: Any
) -> None:
    from torch_ir.runtime.runner import Runner
    from torch_ir.runtime.worker import isolation

    doc = crafted_module(
        weights=[{"name": "cache", "kind": "buffer", "type": _tensor([length])}],
        state=[{"name": "cache", "type": _tensor([length])}],
    )
    path = _write(tmp_path, doc)
    assert main(["report", str(path), "--stats"]) == 0 and "Traceback" not in capsys.readouterr().err
    with (
        isolation(memory_budget=1 << 30),
        pytest.raises(InterpreterError, match=r"declared state takes .*over the memory budget of 1 GiB"),
    ):
        Runner(path, {}, isolate=False)


def test_the_commands_refuse_an_attack_with_exit_status_2(tmp_path: Path, capsys: Any) -> None:
    node = _node("y", "inductor._reinterpret_tensor.default", ["%ids"], {"size": [32], "stride": [1]}, None)
    path = _write(tmp_path, crafted_document([node], [{"name": "ids", "type": _tensor([1, 32], "int64")}], ["%y"]))
    before = _files(tmp_path)
    assert main(["verify", str(path), "--model", "zoo:gpt"]) == 2
    err = capsys.readouterr().err
    assert "is refused: an IR read from a file runs only ops" in err and "Traceback" not in err
    assert _files(tmp_path) == before
