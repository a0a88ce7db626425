"""The example plugin passes through the CLI (a tiny transformers Llama, the zoo ResNet), verified numerically;
plugins from the current directory; reproducers that keep their plugins."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from tests.transformers_models import TINY
from torch_ir import extract_ir, load_ir
from torch_ir.cli import main as cli_main
from torch_ir.passes.registry import get_pass, load_plugins, unregister_pass
from torch_ir.runtime.verifier import verify_ir_with_state_dict

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
LLAMA_CONFIG = ",".join(f"{k}={v}" for k, v in TINY["llama"].items())


@pytest.fixture(scope="module")
def llama_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("llama") / "llama.json"
    assert cli_main(["extract", "hf:llama", "--config", LLAMA_CONFIG, "-o", str(path)]) == 0
    return path


CUSTOM_OPS = {
    "fuse-gqa-attention": "torch_ir_examples::gqa_attention",
    "fuse-linear-act": "torch_ir_examples::linear_act",
}
"""The op each example pass leaves in the IR: a file's IR runs it only when verify names it with --allow-op."""


def _opt_and_verify(src: Path, out: Path, name: str, module: str, model: list[str]) -> list[str]:
    assert cli_main(["opt", str(src), "-p", name, "--plugin", module, "-o", str(out)]) == 0
    allow = ["--allow-op", CUSTOM_OPS[name]] if name in CUSTOM_OPS else []
    assert cli_main(["verify", str(out), *model, "--plugin", module, *allow]) == 0
    return [n.op_type for n in load_ir(str(out)).nodes]


def test_fuse_gqa_attention_on_llama(llama_json: Path, tmp_path: Path) -> None:
    before = [n.op_type for n in load_ir(str(llama_json)).nodes]
    model = ["--model", "hf:llama", "--config", LLAMA_CONFIG]
    after = _opt_and_verify(
        llama_json, tmp_path / "gqa.json", "fuse-gqa-attention", "examples.passes.gqa_attention", model
    )
    layers = TINY["llama"]["num_hidden_layers"]
    assert before.count("aten.scaled_dot_product_attention.default") == layers
    assert after.count("torch_ir_examples.gqa_attention.default") == layers
    assert "aten.scaled_dot_product_attention.default" not in after
    assert after.count("aten.expand.default") == before.count("aten.expand.default") - 2 * layers
    fused = next(n for n in load_ir(str(tmp_path / "gqa.json")).nodes if "gqa" in n.op_type)
    assert fused.operand("key").shape[1] == TINY["llama"]["num_key_value_heads"]
    assert fused.meta.get("module_stack")  # carried from the SDPA node


def test_fuse_linear_act_and_decompose_sdpa_on_llama(llama_json: Path, tmp_path: Path) -> None:
    model = ["--model", "hf:llama", "--config", LLAMA_CONFIG]
    layers = TINY["llama"]["num_hidden_layers"]
    fused = _opt_and_verify(
        llama_json, tmp_path / "act.json", "fuse-linear-act", "examples.passes.linear_activation", model
    )
    assert fused.count("torch_ir_examples.linear_act.default") == layers
    assert "aten.silu.default" not in fused
    explicit = _opt_and_verify(
        llama_json, tmp_path / "sdpa.json", "decompose-sdpa", "examples.passes.decompose_sdpa", model
    )
    assert "aten.scaled_dot_product_attention.default" not in explicit
    assert explicit.count("aten.softmax.int") == layers


def test_fold_batchnorm_on_the_zoo_resnet(tmp_path: Path) -> None:
    src = tmp_path / "resnet.json"
    assert cli_main(["extract", "zoo:resnet", "-o", str(src)]) == 0
    before = load_ir(str(src))
    ops = _opt_and_verify(
        src, tmp_path / "folded.json", "fold-batchnorm", "examples.passes.fold_batchnorm", ["--model", "zoo:resnet"]
    )
    assert "aten.batch_norm.default" in [n.op_type for n in before.nodes]
    assert "aten.batch_norm.default" not in ops
    assert ops.count("aten.conv2d.default") == [n.op_type for n in before.nodes].count("aten.conv2d.default")
    folded = load_ir(str(tmp_path / "folded.json"))
    assert folded.graph.init is not None and len(folded.nodes) < len(before.nodes)
    conv = next(n for n in folded.nodes if n.op_type == "aten.conv2d.default")
    assert conv.operand("weight").kind == "derived" and conv.operand("bias").kind == "derived"


class ConvBN(torch.nn.Module):
    """conv (with and without bias) + batch norm (affine and not), with non-trivial running statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 4, 3, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(4, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))


@pytest.mark.parametrize("decompose", [None, "core_aten"])
def test_fold_batchnorm_is_exact_with_real_statistics(decompose: str | None) -> None:
    load_plugins(["examples.passes.fold_batchnorm"])
    torch.manual_seed(0)
    model = ConvBN().eval()
    for bn in (model.bn1, model.bn2):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    for p in model.bn1.parameters():
        p.data.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 8, 8)
    with torch.device("meta"):
        meta_model = ConvBN().eval()
    ir = extract_ir(meta_model, (torch.empty(1, 3, 8, 8, device="meta"),), decompose=decompose)
    result = get_pass("fold-batchnorm")()(ir.graph)
    assert result.modified
    assert not [n.op_type for n in ir.nodes if "batch_norm" in n.op_type]
    ok, report = verify_ir_with_state_dict(ir, model.state_dict(), model, (x,))
    assert ok, str(report)
    eps = next(n for n in ir.graph.init.nodes if n.op_type == "aten.add.Tensor" and n.attrs.get("other") == 1e-5)
    eps.attrs["other"] = 0.5  # a wrong eps must show
    ok, _ = verify_ir_with_state_dict(ir, model.state_dict(), model, (x,))
    assert not ok


def test_plugins_import_from_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "cwdplug"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "passes.py").write_text(
        "from dataclasses import dataclass\nfrom typing import ClassVar\n"
        "from torch_ir import Pass, PassResult, register_pass\n\n"
        "@register_pass\n@dataclass(frozen=True)\nclass Nothing(Pass):\n"
        '    """Does nothing."""\n    name: ClassVar[str] = "test-cwd-nothing"\n\n'
        "    def run(self, graph, ctx):\n        return PassResult(graph, False)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        load_plugins(["cwdplug.passes"])
        assert get_pass("test-cwd-nothing").__module__ == "cwdplug.passes"
        assert str(tmp_path) in sys.path
    finally:
        unregister_pass("test-cwd-nothing")
        for name in ("cwdplug.passes", "cwdplug"):
            sys.modules.pop(name, None)


FAILING_PLUGIN = """
from dataclasses import dataclass
from typing import ClassVar
from torch_ir import Pass, PassError, register_pass

@register_pass
@dataclass(frozen=True)
class AlwaysFails(Pass):
    \"\"\"Fails on purpose.\"\"\"
    name: ClassVar[str] = "test-always-fails"

    def run(self, graph, ctx):
        raise PassError("broken on purpose")
"""


def test_reproducer_keeps_plugins_given_with_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "failplug.py").write_text(FAILING_PLUGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    src = tmp_path / "in.json"
    assert cli_main(["extract", "zoo:resnet", "-o", str(src), "-p", "none"]) == 0
    repro = tmp_path / "repro.json"
    try:
        args = ["opt", str(src), "-p", "canonicalize,test-always-fails", "--plugin", "failplug"]
        assert cli_main([*args, "--reproducer", str(repro)]) == 2
        doc = json.loads(repro.read_text())
        assert "failplug" in doc["plugins"] and doc["failed_pass"] == "test-always-fails"
        unregister_pass("test-always-fails")
        sys.modules.pop("failplug", None)
        capsys.readouterr()
        assert cli_main(["opt", "--replay", str(repro)]) == 2  # prints the command, runs nothing
        err = capsys.readouterr().err
        assert "-p canonicalize,test-always-fails --plugin failplug" in err and "failplug" not in sys.modules
        pipeline = ["-p", "canonicalize,test-always-fails"]
        assert cli_main(["opt", "--replay", str(repro), *pipeline, "--plugin", "failplug"]) == 2
        err = capsys.readouterr().err
        assert "broken on purpose" in err and "unknown pass" not in err
    finally:
        unregister_pass("test-always-fails")
        sys.modules.pop("failplug", None)


def test_verify_config_and_plugin_errors_are_clear(llama_json: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["verify", str(llama_json), "--model", "hf:llama", "--config", "not a pair"]) == 2
    assert "config override" in capsys.readouterr().err
    args = ["verify", str(llama_json), "--model", "hf:llama", "--config", LLAMA_CONFIG, "--plugin", "no_such_mod_x"]
    assert cli_main(args) == 2
    assert "plugin 'no_such_mod_x' could not be imported" in capsys.readouterr().err


def _sdpa_graph(attrs: str = "dropout_p=0.0, is_causal=false, scale=null, enable_gqa=false", n_rep: int = 2) -> str:
    h = 2 * n_rep
    kv = (
        "  %{n}u = aten.unsqueeze.default(%{n}) {{dim=2}} : (f32[1,2,8,4]) -> f32[1,2,1,8,4]\n"
        "  %{n}e = aten.expand.default(%{n}u) {{size=[1, 2, {r}, 8, 4], implicit=false}}"
        " : (f32[1,2,1,8,4]) -> f32[1,2,{r},8,4]\n"
        "  %{n}r = aten.reshape.default(%{n}e) {{shape=[1, {h}, 8, 4]}} : (f32[1,2,{r},8,4]) -> f32[1,{h},8,4]\n"
    )
    return (
        f"graph(%q: f32[1,{h},8,4], %k: f32[1,2,8,4], %v: f32[1,2,8,4]) {{\n"
        + kv.format(n="k", r=n_rep, h=h)
        + kv.format(n="v", r=n_rep, h=h)
        + f"  %o = aten.scaled_dot_product_attention.default(%q, %kr, %vr) {{attn_mask=null, {attrs}}}"
        f" : (f32[1,{h},8,4], f32[1,{h},8,4], f32[1,{h},8,4]) -> f32[1,{h},8,4]\n  return %o\n}}"
    )


def test_gqa_pattern_fuses_and_declines() -> None:
    from examples.passes.gqa_attention import FuseGQAAttention
    from torch_ir.ir import parse_graph
    from torch_ir.runtime.interpreter import run_ir

    g = parse_graph(_sdpa_graph())
    q, k, v = torch.randn(1, 4, 8, 4), torch.randn(1, 2, 8, 4), torch.randn(1, 2, 8, 4)
    expected = run_ir(g, {}, q, k, v)
    assert FuseGQAAttention()(g).modified
    assert [n.op_type for n in g.nodes] == ["torch_ir_examples.gqa_attention.default"]
    torch.testing.assert_close(run_ir(g, {}, q, k, v), expected)
    for attrs in ("dropout_p=0.1, is_causal=false, scale=null, enable_gqa=false",):
        declined = parse_graph(_sdpa_graph(attrs))
        assert not FuseGQAAttention()(declined).modified


def test_linear_act_pattern_declines_tanh_gelu_and_shared_linear() -> None:
    from examples.passes.linear_activation import FuseLinearActivation
    from torch_ir.ir import parse_graph

    text = """graph(%x: f32[2,4]) {
  weight @w : f32[8,4] parameter
  %l = aten.linear.default(%x, @w) {bias=null} : (f32[2,4], f32[8,4]) -> f32[2,8]
  %g = aten.gelu.default(%l) {approximate="tanh"} : (f32[2,8]) -> f32[2,8]
  return %g
}"""
    assert not FuseLinearActivation()(parse_graph(text)).modified
    exact = parse_graph(text.replace('"tanh"', '"none"'))
    assert FuseLinearActivation()(exact).modified
    fused = exact.nodes[0]
    assert fused.operand("bias") is None and fused.operand("activation") == "gelu"
    shared = parse_graph(text.replace('"tanh"', '"none"').replace("return %g", "return %g, %l"))
    assert not FuseLinearActivation()(shared).modified


def test_fold_batchnorm_declines_training_mode() -> None:
    load_plugins(["examples.passes.fold_batchnorm"])
    from torch_ir.ir import parse_graph

    text = """graph(%x: f32[1,3,8,8]) {
  weight @w : f32[4,3,3,3] parameter
  weight @m : f32[4] buffer
  weight @s : f32[4] buffer
  %c = aten.conv2d.default(%x, @w) {bias=null, stride=[1, 1], padding=[0, 0], dilation=[1, 1], groups=1} \
: (f32[1,3,8,8], f32[4,3,3,3]) -> f32[1,4,6,6]
  %b = aten.batch_norm.default(%c, @m, @s) {weight=null, bias=null, training=TRAINING, momentum=0.1, eps=1e-05, \
cudnn_enabled=false} : (f32[1,4,6,6], f32[4], f32[4]) -> f32[1,4,6,6]
  return %b
}"""
    assert not get_pass("fold-batchnorm")()(parse_graph(text.replace("TRAINING", "true"))).modified
    folded = parse_graph(text.replace("TRAINING", "false"))
    assert get_pass("fold-batchnorm")()(folded).modified
    assert [n.op_type for n in folded.nodes] == ["aten.conv2d.default"]
    assert folded.init is not None and folded.nodes[0].operand("weight").kind == "derived"


@pytest.mark.parametrize(
    ("name", "plugin", "fused"),
    [
        ("fuse-linear-act", "examples.passes.linear_activation", "torch_ir_examples.linear_act.default"),
        ("decompose-sdpa", "examples.passes.decompose_sdpa", None),
    ],
)
def test_example_passes_rewrite_every_entry_of_a_program(name: str, plugin: str, fused: str | None) -> None:
    from tests.transformers_models import build_causal_lm
    from torch_ir import PassManager, Runner, extract_llm

    load_plugins([plugin])
    ir = extract_llm(build_causal_lm("llama", "meta"), max_cache_len=16)
    real = build_causal_lm("llama", "cpu")
    ids, step = torch.randint(0, 100, (1, 5)), torch.tensor([[7]])

    def generate() -> list[torch.Tensor]:
        runner = Runner(ir, real)
        first = runner.call("prefill", input_ids=ids, cache_position=torch.arange(5))
        return [first, runner.call("decode", input_ids=step, cache_position=torch.tensor([5]))]

    expected = generate()
    sdpa = {
        e: [n.op_type for n in g.nodes].count("aten.scaled_dot_product_attention.default")
        for e, g in ir.entries.items()
    }
    PassManager(name).run(ir)
    ir.verify()
    layers = TINY["llama"]["num_hidden_layers"]
    for entry, graph in ir.entries.items():
        ops = [n.op_type for n in graph.nodes]
        if fused is not None:
            assert ops.count(fused) == layers, entry
        else:
            assert "aten.scaled_dot_product_attention.default" not in ops and sdpa[entry] == layers, entry
    for got, want in zip(generate(), expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_gqa_fusion_rewrites_every_function_of_a_module() -> None:
    from tests.transformers_models import build_causal_lm
    from torch_ir import IR, PassManager, Runner

    load_plugins(["examples.passes.gqa_attention"])
    meta, real = build_causal_lm("llama", "meta"), build_causal_lm("llama", "cpu")
    graphs = {
        f"seq{n}": extract_ir(
            meta,
            (torch.zeros(1, n, dtype=torch.long, device="meta"),),
            example_kwargs={"use_cache": False},
            pipeline="none",
        ).graph
        for n in (6, 3)
    }
    ir = IR.program(graphs)
    ids = {"seq6": torch.randint(0, 100, (1, 6)), "seq3": torch.randint(0, 100, (1, 3))}
    expected = {e: Runner(ir, real, strict=False).call(e, ids[e], use_cache=False) for e in graphs}
    PassManager("default").run(ir)
    PassManager("fuse-gqa-attention").run(ir)
    layers = TINY["llama"]["num_hidden_layers"]
    for entry, graph in ir.entries.items():
        assert [n.op_type for n in graph.nodes].count("torch_ir_examples.gqa_attention.default") == layers, entry
        got = Runner(ir, real, strict=False).call(entry, ids[entry], use_cache=False)
        torch.testing.assert_close(got, expected[entry], rtol=1e-4, atol=1e-4)


def test_fold_batchnorm_folds_in_every_function_and_shares_the_derived_weights() -> None:
    from torch_ir import IR, PassManager, Runner

    load_plugins(["examples.passes.fold_batchnorm"])
    torch.manual_seed(0)
    model = ConvBN().eval()
    for bn in (model.bn1, model.bn2):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    with torch.device("meta"):
        meta_model = ConvBN().eval()
    x = torch.empty(1, 3, 8, 8, device="meta")
    graphs = {e: extract_ir(meta_model, (x,), pipeline="none").graph for e in ("small", "large")}
    ir = IR.program(graphs)
    PassManager("annotate-shapes,fold-batchnorm,eliminate-dead-nodes").run(ir)
    ir.verify()
    for graph in ir.entries.values():
        assert not [n for n in graph.nodes if "batch_norm" in n.op_type]
    derived = [w.name for w in ir.weights.values() if w.kind == "derived"]
    assert ir.init is not None and len(ir.init.outputs) == len(derived) == 4  # W' and b' of two convs, once
    real = torch.randn(1, 3, 8, 8)
    runner = Runner(ir, model.state_dict())  # num_batches_tracked: read by nothing, recorded as unused
    for entry in ir.entries:
        torch.testing.assert_close(runner.call(entry, real), model(real), rtol=1e-4, atol=1e-5)
