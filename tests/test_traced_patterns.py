"""Patterns traced from functions (``pattern_from_function``, ``rule_from_functions``), custom ops in one call
(``define_op``), and the RMSNorm fusion example built from both, on a tiny Llama verified against eager."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from torch_ir import PassError, PassManager, define_op, parse_graph
from torch_ir.ops import op_info
from torch_ir.ops.registry import get_entry
from torch_ir.passes.rewrite import Op, Var, apply_patterns, match
from torch_ir.passes.traced_patterns import pattern_from_function, replacement_from_function, rule_from_functions
from torch_ir.runtime.interpreter import run_ir

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = (torch.randn(2, 8), torch.randn(8), 1e-6)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def norm_graph(eps: str = "1e-05", mul: str = "%h, %rsqrt", mul_1: str = "@norm.weight, %mul") -> str:
    types = {"%h": "f32[1,3,16]", "%rsqrt": "f32[1,3,1]", "@norm.weight": "f32[16]", "%mul": "f32[1,3,16]"}
    mul_types = ", ".join(types[v] for v in mul.split(", "))
    mul_1_types = ", ".join(types[v] for v in mul_1.split(", "))
    return f"""graph(%h: f32[1,3,16]) {{
  weight @norm.weight : f32[16] parameter
  %pow = aten.pow.Tensor_Scalar(%h) {{exponent=2}} : (f32[1,3,16]) -> f32[1,3,16]
  %mean = aten.mean.dim(%pow) {{dim=[-1], keepdim=true, dtype=null}} : (f32[1,3,16]) -> f32[1,3,1]
  %add = aten.add.Tensor(%mean) {{other={eps}, alpha=1}} : (f32[1,3,1]) -> f32[1,3,1]
  %rsqrt = aten.rsqrt.default(%add) : (f32[1,3,1]) -> f32[1,3,1]
  %mul = aten.mul.Tensor({mul}) : ({mul_types}) -> f32[1,3,16]
  %mul_1 = aten.mul.Tensor({mul_1}) : ({mul_1_types}) -> f32[1,3,16]
  return %mul_1
}}"""


@pytest.fixture(scope="module")
def traced() -> Op:
    return pattern_from_function(rms_norm, EXAMPLE)


def test_a_traced_pattern_is_the_op_tree_export_gives(traced: Op) -> None:
    assert traced.op_types == ("aten.mul.Tensor",)
    weight, normalized = traced.slots["aten.mul.Tensor"].values()
    assert weight == Var("weight")
    x, rsqrt = normalized.slots["aten.mul.Tensor"].values()
    assert x == Var("x") and rsqrt.op_types == ("aten.rsqrt.default",)
    add = rsqrt.slots["aten.rsqrt.default"]["self"]
    assert add.slots["aten.add.Tensor"]["other"] == Var("eps")  # the scalar parameter is a capture


@pytest.mark.parametrize(("mul", "mul_1"), [("%h, %rsqrt", "@norm.weight, %mul"), ("%rsqrt, %h", "%mul, @norm.weight")])
def test_a_traced_pattern_matches_any_epsilon_in_any_operand_order(traced: Op, mul: str, mul_1: str) -> None:
    g = parse_graph(norm_graph("1e-05", mul, mul_1))
    found = match(traced, g.value("mul_1").producer)
    assert found is not None
    assert found["x"] is g.value("h") and found["weight"] is g.weight("norm.weight") and found["eps"] == 1e-05
    assert len(found.nodes) == 6


def test_a_traced_pattern_keeps_its_literals(traced: Op) -> None:
    g = parse_graph(norm_graph().replace("dim=[-1]", "dim=[1]").replace("f32[1,3,1]", "f32[1,1,16]"))
    assert match(traced, g.value("mul_1").producer) is None


def test_a_traced_rule_rewrites_with_inferred_types_and_the_same_values() -> None:
    fused = define_op("torch_ir_tests::rms_norm", rms_norm)
    rule = rule_from_functions(rms_norm, lambda x, weight, eps: fused(x, weight, eps) * 1.0, EXAMPLE, name="rms")
    g = parse_graph(norm_graph())
    w, h = torch.randn(16), torch.randn(1, 3, 16)
    expected = run_ir(g, {"norm.weight": w}, h)
    assert apply_patterns(g, [rule]).counts == {"rms": 1}
    norm, scale = g.nodes  # the replacement's two ops, built on this graph's values
    assert norm.op_type == "torch_ir_tests.rms_norm.default" and scale.op_type == "aten.mul.Tensor"
    assert norm.operand("x") is g.value("h") and norm.operand("weight") is g.weight("norm.weight")
    assert norm.operand("eps") == 1e-05  # the captured epsilon, not the traced one
    assert str(norm.output.type) == str(scale.output.type) == "f32[1,3,16]"  # this graph's shapes, inferred
    assert g.outputs == [scale.output]
    torch.testing.assert_close(run_ir(g, {"norm.weight": w}, h), expected)


def test_traced_functions_that_cannot_be_patterns_are_refused() -> None:
    with pytest.raises(PassError, match=r"scalar parameter\(s\) eps do not appear in the trace"):
        pattern_from_function(lambda x, eps: x.exp(), (torch.randn(2), 0.5))
    with pytest.raises(PassError, match="has 2 results; a traced pattern holds single-result ops"):
        pattern_from_function(lambda x: torch.var_mean(x, 0)[0].exp(), (torch.randn(4, 2),))
    with pytest.raises(PassError, match="one example per parameter"):
        pattern_from_function(lambda x, y: x + y, (torch.randn(2),))
    with pytest.raises(PassError, match="parameter s is a str"):
        pattern_from_function(lambda x, s: x, (torch.randn(2), "gelu"))
    two = (torch.randn(2), torch.randn(2))
    with pytest.raises(PassError, match="the replacement reads z, which the pattern does not"):
        rule_from_functions(lambda x, y: x.exp() * y, lambda x, z: x + z, two)
    rewrite = replacement_from_function(lambda x, z: x + z, two)
    assert rewrite.reads == {"x", "z"}


def test_define_op_in_one_call_is_idempotent() -> None:
    def scaled_tanh(x: torch.Tensor, scale: float) -> torch.Tensor:
        return torch.tanh(x) * scale

    first = define_op("torch_ir_tests::scaled_tanh", scaled_tanh)
    again = define_op("torch_ir_tests::scaled_tanh", scaled_tanh)  # a plugin imported twice
    assert first is again is torch.ops.torch_ir_tests.scaled_tanh
    torch.testing.assert_close(first(torch.ones(2), 2.0), 2 * torch.tanh(torch.ones(2)))
    info = op_info("torch_ir_tests.scaled_tanh.default")  # the IR's spelling of torch_ir_tests::scaled_tanh
    assert info.pure and info.known and [a.name for a in info.arguments] == ["x", "scale"]
    assert get_entry("torch_ir_tests::scaled_tanh") is not None
    g = parse_graph("""graph(%x: f32[3,5]) {
  %t = torch_ir_tests.scaled_tanh.default(%x) {scale=2.0} : (f32[3,5]) -> ?
  %u = torch_ir_tests.scaled_tanh.default(%x) {scale=2.0} : (f32[3,5]) -> ?
  %s = aten.add.Tensor(%t, %u) : (?, ?) -> ?
  return %s
}""")
    PassManager("annotate-shapes,cse").run(g)  # the default fake kernel types it (like its first tensor)
    assert [str(n.output.type) for n in g.nodes] == ["f32[3,5]", "f32[3,5]"]
    x = torch.randn(3, 5)
    torch.testing.assert_close(run_ir(g, {}, x), 4 * torch.tanh(x))


def test_define_op_as_a_decorator_with_a_fake_kernel() -> None:
    @define_op("torch_ir_tests::row_sums", fake=lambda x: x.new_empty(x.shape[:-1]))
    def row_sums(x: torch.Tensor) -> torch.Tensor:
        return x.sum(-1)

    g = parse_graph("""graph(%x: f32[3,5]) {
  %r = torch_ir_tests.row_sums.default(%x) : (f32[3,5]) -> ?
  return %r
}""")
    PassManager("annotate-shapes").run(g)
    assert str(g.nodes[0].output.type) == "f32[3]"
    assert row_sums is torch.ops.torch_ir_tests.row_sums


def test_define_op_names_a_bad_definition() -> None:
    from torch_ir import TorchIRError

    with pytest.raises(TorchIRError, match="name the op as torch does, 'namespace::op'"):
        define_op("torch_ir_tests.plain", lambda x: x)
    with pytest.raises(TorchIRError, match="torch.library cannot define it"):
        define_op("torch_ir_tests::untyped", lambda x: x)  # no type hints: no schema


def test_the_rms_norm_example_is_one_traced_rule_under_20_lines() -> None:
    source = (ROOT / "examples" / "passes" / "rms_norm.py").read_text()
    body = source.split('"""', 2)[2]  # after the module docstring
    code = [
        line
        for line in body.splitlines()
        if line.strip() and not line.lstrip().startswith(("import ", "from ", "#", '"""'))
    ]
    assert len(code) < 20, "\n".join(code)
    assert source.count("rule_from_functions(") == 1 and source.count("RewriteRule(") == 0  # one traced rule


@pytest.mark.slow
def test_the_rms_norm_fusion_on_a_tiny_llama_verifies(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from tests.transformers_models import TINY
    from torch_ir import load_ir
    from torch_ir.cli import main as cli_main

    config = ",".join(f"{k}={v}" for k, v in TINY["llama"].items())
    src, out = tmp_path / "llama.json", tmp_path / "fused.json"
    assert cli_main(["extract", "hf:llama", "--config", config, "-o", str(src)]) == 0
    plugin = ["--plugin", "examples.passes.rms_norm"]
    assert cli_main(["opt", str(src), "-p", "fuse-rms-norm", *plugin, "-o", str(out)]) == 0
    assert cli_main(["verify", str(out), "--model", "hf:llama", "--config", config, *plugin]) == 0
    ops = [n.op_type for n in load_ir(str(out)).nodes]
    layers = TINY["llama"]["num_hidden_layers"]
    assert ops.count("torch_ir_examples.rms_norm.default") == 2 * layers + 1  # two per layer, the final norm
    assert "aten.rsqrt.default" not in ops
