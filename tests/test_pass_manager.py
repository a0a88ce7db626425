"""PassManager: instrumentation, pass log, failures and reproducers, the CLI, custom passes, end to end."""

# ruff: noqa: E501  (graphs in the text form have long lines)
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from torch_ir import IR, Pass, PassError, PassManager, PassResult, extract_ir, parse_graph, register_pass
from torch_ir.cli import main as cli_main
from torch_ir.passes.manager import Instrumentation, format_pass_log, run_pipeline
from torch_ir.passes.registry import unregister_pass

GRAPH = """graph(%x: f32[2,4]) {
  weight @w : f32[8,4] parameter
  %t = aten.t.default(@w) : (f32[8,4]) -> f32[4,8]
  aten._assert_tensor_metadata.default(%x) {size=null, stride=null, dtype="float32", device="meta", layout="strided"} : (f32[2,4]) -> () loc(assert_0)
  %a = aten.alias.default(%x) : (f32[2,4]) -> f32[2,4]
  %m = aten.mm.default(%a, %t) : (f32[2,4], f32[4,8]) -> f32[2,8]
  %r = aten.relu.default(%m) : (f32[2,8]) -> f32[2,8]
  %r2 = aten.relu.default(%m) : (f32[2,8]) -> f32[2,8]
  %o = aten.add.Tensor(%r, %r2) {alpha=1} : (f32[2,8], f32[2,8]) -> f32[2,8]
  return %o
}"""


@dataclass(frozen=True)
class Explode(Pass):
    """Raises."""

    name: ClassVar[str] = "test-explode"

    def run(self, graph, ctx):
        raise RuntimeError("boom")


@dataclass(frozen=True)
class BreakGraph(Pass):
    """Leaves a value without a type."""

    name: ClassVar[str] = "test-break"

    def run(self, graph, ctx):
        graph.nodes[0].outputs[0].type = None
        return PassResult(graph, True)


@pytest.fixture(autouse=True, scope="module")
def _test_passes():
    register_pass(Explode)
    register_pass(BreakGraph)
    yield
    unregister_pass("test-explode")
    unregister_pass("test-break")


def test_default_pipeline_log_and_table():
    ir = IR(parse_graph(GRAPH))
    run_pipeline(ir, "default")
    assert [row["pass"] for row in ir.pass_log] == [
        "annotate-shapes",
        "canonicalize",
        "cse",
        "dedup-weights",
        "hoist-weights",
        "eliminate-dead-nodes",
    ]
    assert set(ir.pass_log[0]) == {
        "pass",
        "seconds",
        "modified",
        "nodes_before",
        "nodes_after",
        "weights_before",
        "weights_after",
    }
    assert [n.op_type for n in ir.nodes] == ["aten.mm.default", "aten.relu.default", "aten.add.Tensor"]
    assert [w.kind for w in ir.weights.values()] == ["derived"]
    assert "canonicalize" in format_pass_log(ir.pass_log)


def test_instrumentation_hooks_print_dump_and_steps(tmp_path):
    calls = []

    class Record(Instrumentation):
        def before_pipeline(self, graph, manager):
            calls.append("start")

        def before_pass(self, p, graph, index):
            calls.append(f"before {p.name}")

        def after_pass(self, p, graph, index, result):
            calls.append(f"after {p.name} {result.modified}")

        def after_pipeline(self, graph, manager):
            calls.append("end")

    out = io.StringIO()
    pm = PassManager(
        "canonicalize,cse",
        [Record()],
        print_ir_after=["all"],
        print_ir_before=["cse"],
        dump_dir=tmp_path / "dump",
        timing=True,
        steps=3,
        stream=out,
    )
    pm.run(parse_graph(GRAPH))
    assert calls == [
        "start",
        "before canonicalize",
        "after canonicalize True",
        "before cse",
        "after cse True",
        "before canonicalize",
        "after canonicalize False",
        "before cse",
        "after cse False",
        "end",
    ]
    text = out.getvalue()
    assert text.count("IR after canonicalize") == 1 and "IR before cse" in text and "total" in text
    names = sorted(p.name for p in (tmp_path / "dump").iterdir())
    assert names[:4] == ["000-input.json", "000-input.txt", "001-canonicalize.json", "001-canonicalize.txt"]
    assert "004-cse.json" in names
    from torch_ir.serde import load

    assert len(load(tmp_path / "dump" / "002-cse.json").nodes) == 4


def test_failing_pass_names_pass_and_predecessors(tmp_path):
    repro = tmp_path / "repro.json"
    with pytest.raises(
        PassError, match=r"(?s)'test-explode' \(#3\) failed: RuntimeError: boom.*before it: canonicalize, cse"
    ) as info:
        PassManager("canonicalize,cse,test-explode", reproducer=repro).run(parse_graph(GRAPH))
    assert info.value.pass_name == "test-explode"
    doc = json.loads(repro.read_text())
    assert doc["pipeline"] == "canonicalize,cse,test-explode" and doc["failed_pass"] == "test-explode"
    # the reproducer holds the input IR: replaying it (trusting the plugins it names) fails the same way
    trusted = [flag for name in doc["plugins"] for flag in ("--plugin", name)]
    assert cli_main(["opt", "--replay", str(repro)]) == 2  # refused: a file never imports code by itself
    assert cli_main(["opt", "--replay", str(repro), *trusted]) == 2
    assert cli_main(["opt", str(repro), "-p", "canonicalize", "-o", str(tmp_path / "fixed.json"), *trusted]) == 0


def test_invalid_graph_is_caught_by_verify_each():
    with pytest.raises(PassError, match="'test-break' \\(#2\\) left an invalid graph.*no type"):
        PassManager("cse,test-break").run(parse_graph(GRAPH))
    PassManager("test-break", verify_each=False).run(parse_graph(GRAPH))


def test_cli_opt_and_passes(tmp_path, capsys):
    src = tmp_path / "in.json"
    IR(parse_graph(GRAPH)).save(src)
    out = tmp_path / "out.json"
    assert (
        cli_main(
            [
                "opt",
                str(src),
                "-p",
                "canonicalize,dce",
                "-o",
                str(out),
                "--timing",
                "--print-ir-after",
                "canonicalize",
                "--dump-dir",
                str(tmp_path / "d"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "IR after canonicalize" in err and "eliminate-dead-nodes" in err
    from torch_ir import load_ir as load

    assert "aten.alias.default" not in [n.op_type for n in load(str(out)).nodes]
    assert cli_main(["opt", str(src), "-p", "cse{bogus=1}"]) == 2
    assert cli_main(["opt", str(src), "--plugin", "no_such_plugin_mod"]) == 2
    assert "plugin 'no_such_plugin_mod'" in capsys.readouterr().err
    assert cli_main(["passes"]) == 0
    listing = capsys.readouterr().out
    assert "hoist-weights" in listing and "min-numel: int (default 0)" in listing and "alias: dce" in listing


def test_custom_pass_from_pipeline_file(tmp_path):
    pipeline = tmp_path / "fuse.toml"
    pipeline.write_text('plugins = ["examples.custom_pass"]\npipeline = "fuse-linear-act,annotate-shapes,dce"\n')
    g = parse_graph(
        """graph(%x: f32[2,4]) {
  weight @w : f32[8,4] parameter
  weight @b : f32[8] parameter
  %l = aten.linear.default(%x, @w, @b) : (f32[2,4], f32[8,4], f32[8]) -> f32[2,8]
  %r = aten.relu.default(%l) : (f32[2,8]) -> f32[2,8]
  %l2 = aten.linear.default(%r, @w) {bias=null} : (f32[2,8], f32[8,4]) -> f32[2,8]
  return %r
}""".replace("%l2 = aten.linear.default(%r, @w) {bias=null} : (f32[2,8], f32[8,4]) -> f32[2,8]\n  ", "")
    )
    before = tuple(g.nodes)  # a snapshot: g.nodes itself is a live view
    ir = IR(g)
    run_pipeline(ir, str(pipeline))
    assert [n.op_type for n in ir.nodes] == ["torch_ir_examples.linear_act.default"]
    assert len(before) == 2
    from torch_ir.runtime.interpreter import Interpreter

    weights = {"w": torch.randn(8, 4), "b": torch.randn(8)}
    x = torch.randn(2, 4)
    torch.testing.assert_close(Interpreter(ir, weights)(x), torch.relu(x @ weights["w"].T + weights["b"]))


# ------------------------------------------------------------------------- end to end


def _extract(model_type):
    from tests.transformers_models import build_causal_lm, causal_lm_inputs
    from torch_ir import extract_ir

    args, kwargs = causal_lm_inputs("meta")
    return extract_ir(build_causal_lm(model_type, "meta"), args, example_kwargs=kwargs)


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_transformers_default_pipeline(model_type, tmp_path):
    pytest.importorskip("transformers")
    ir = _extract(model_type)
    ops = {n.op_type for n in ir.nodes}
    assert "aten._assert_tensor_metadata.default" not in ops
    assert not any(n.op_type == "aten.dropout.default" and n.attrs.get("train") is False for n in ir.nodes)
    if model_type == "gpt2":
        tied = [w for w in ir.weights.values() if "lm_head.weight" in w.names]
        assert len(tied) == 1 and set(tied[0].names) == {"transformer.wte.weight", "lm_head.weight"}
    ir.verify()
    path = tmp_path / "ir.json"
    ir.save(path)
    from torch_ir import load_ir as load

    loaded = load(str(path))
    assert loaded == ir
    loaded.verify()


def test_hoist_on_model_with_weight_transform():
    from torch_ir import extract_ir

    class Transposed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(8, 4))

        def forward(self, x):
            return x @ self.w.t().to(torch.float16).to(torch.float32)

    model = Transposed().eval()
    x = torch.randn(2, 4)
    ir = extract_ir(model, (x,))
    assert ir.init is not None and len(ir.init.nodes) >= 2
    assert [w.kind for w in ir.weights.values()] == ["derived"]
    from torch_ir.runtime.interpreter import Interpreter

    torch.testing.assert_close(Interpreter(ir, model.state_dict())(x), model(x))


_TORCH_FREE_PASSES = """
import sys
from torch_ir import load_ir
from torch_ir.passes import PassManager
from torch_ir.passes.registry import all_passes

ir = load_ir(sys.argv[1])
own = [name for name, cls in all_passes().items() if not cls.uses_torch and cls.__module__.startswith("torch_ir.")]
names = sorted(own, key=lambda name: (name == "inline", name))  # inline last: it undoes the outlining
manager = PassManager(",".join(names), verify_each=False)
manager.run(ir)
print(",".join(names), manager.setup_seconds, "torch" in sys.modules)
"""


def test_passes_that_say_they_need_no_torch_run_without_it(tmp_path):
    """``Pass.uses_torch = False`` is a promise: a pipeline of such passes (on an IR whose layers they outline
    and inline back) never imports torch, and the pass manager does not import it for them."""
    import subprocess
    import sys

    from torch_ir.frontends.model_specs import resolve_model

    bundle = resolve_model("zoo:gpt")
    path = tmp_path / "gpt.json"
    extract_ir(bundle.model, bundle.args, pipeline="annotate-shapes,canonicalize").save(path)
    out = subprocess.run([sys.executable, "-c", _TORCH_FREE_PASSES, str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    names, setup, imported = out.stdout.split()
    assert {"canonicalize", "eliminate-dead-nodes", "hoist-weights", "inline", "outline-repeated-blocks"} <= set(
        names.split(",")
    )
    assert (setup, imported) == ("0.0", "False")


def test_pass_log_table_has_a_row_per_pass_and_the_total() -> None:
    log = [
        {"pass": "canonicalize", "seconds": 0.0015, "modified": True, "nodes_before": 12, "nodes_after": 9,
         "weights_before": 4, "weights_after": 4},
        {"pass": "dedup-weights", "seconds": 0.25, "modified": False, "nodes_before": 9, "nodes_after": 9,
         "weights_before": 4, "weights_after": 3},
    ]  # fmt: skip
    header = "  #  pass                            ms  changed         nodes        weights"
    rule = "-" * len(header)
    assert format_pass_log(log).splitlines() == [
        header,
        rule,
        "  1  canonicalize                  1.50  yes             12->9           4->4",
        "  2  dedup-weights               250.00  no               9->9           4->3",
        rule,
        "     total                       251.50",
    ]
