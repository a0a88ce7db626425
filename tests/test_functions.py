"""Functions and calls: private functions called per block, outlining repeated blocks exactly, inlining back,
the verifier, the text form, the file format and the interpreter."""

from __future__ import annotations

import json

import pytest
import torch

import torch_ir
from tests.transformers_models import TINY, build_causal_lm, causal_lm_inputs
from torch_ir import VerificationError, extract_ir
from torch_ir.frontends.model_specs import resolve_model
from torch_ir.ir import Module, parse_module
from torch_ir.ir.calls import CALL_OP, call_counts, callee_name
from torch_ir.passes import PassManager
from torch_ir.serde import dumps, loads

ARCHITECTURES = ["gpt2", "llama", "qwen2", "gemma", "mixtral", "falcon", "deepseek_v3"]


BEFORE_CSE = "annotate-shapes,canonicalize"
"""What runs before outlining: CSE across layers (the rotary cos/sin of layer 0 reused by layer 1) would make
the blocks differ, so extraction with functions outlines before it."""


LAYERS = {"deepseek_v3": 3}
"""Layer counts other than the tiny config's: DeepSeek-V3's first layer is dense, the others mixtures of
experts, so three layers make two equal blocks."""


def _hf(model_type: str, pipeline: str = BEFORE_CSE) -> Module:
    args, kwargs = causal_lm_inputs("meta")
    extra = {"num_hidden_layers": LAYERS[model_type]} if model_type in LAYERS else {}
    model = build_causal_lm(model_type, "meta", **extra)
    return extract_ir(model, args, example_kwargs=kwargs, pipeline=pipeline)


def _zoo(name: str) -> Module:
    bundle = resolve_model(f"zoo:{name}")
    return extract_ir(bundle.model, bundle.args, pipeline=BEFORE_CSE)


def _outlined(ir: Module) -> Module:
    PassManager("outline-repeated-blocks").run(ir)
    ir.verify()
    return ir


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_outline_then_inline_gives_the_ir_back(model_type: str) -> None:
    flat = _hf(model_type)
    ir = _hf(model_type)
    _outlined(ir)
    private = [n for n, f in ir.functions.items() if not f.public]
    assert private, "a decoder's layers are repeated blocks"
    calls = [n for n in ir.graph.nodes if n.op_type == CALL_OP]
    layers = LAYERS.get(model_type, TINY[model_type].get("num_hidden_layers", TINY[model_type].get("n_layer")))
    layers -= 1 if model_type == "deepseek_v3" else 0  # the dense first layer stays as it is
    assert len(calls) == layers
    assert sum(call_counts({n: f.graph for n, f in ir.functions.items()}, ["forward"])[p] for p in private) == layers
    PassManager("inline").run(ir)
    assert list(ir.functions) == ["forward"]
    assert ir == flat


@pytest.mark.parametrize("name", ["gpt", "resnet"])
def test_outline_then_inline_on_the_zoo(name: str) -> None:
    flat, ir = _zoo(name), _zoo(name)
    _outlined(ir)
    assert any(not f.public for f in ir.functions.values())
    PassManager("inline").run(ir)
    assert ir == flat


def test_outline_is_exact_on_any_ir_even_where_cse_made_blocks_differ() -> None:
    """After CSE, layer 1 reads the rotary cos/sin that layer 0 unsqueezed: the blocks differ and are left
    alone; whatever is outlined, inlining gives the IR back."""
    flat, ir = _hf("llama", "default"), _hf("llama", "default")
    PassManager("outline-repeated-blocks").run(ir)
    ir.verify()
    PassManager("inline").run(ir)
    assert ir == flat


def test_an_outlined_llama_computes_what_the_flat_one_does() -> None:
    real = build_causal_lm("llama", "cpu")
    (ids,), kwargs = causal_lm_inputs("cpu")
    flat = _hf("llama")
    ir = _outlined(_hf("llama"))
    assert len(ir.graph.nodes) < len(flat.graph.nodes) // 2
    body = next(f.graph for f in ir.functions.values() if not f.public)
    assert body.meta["module_path"] == "model.layers.0"
    assert "self_attn.q_proj.weight" in [v.name for v in body.inputs]  # weights are parameters of the body
    expected = torch_ir.run(flat, real, ids, **kwargs)
    got = torch_ir.run(ir, real, ids, **kwargs)
    torch.testing.assert_close(got, expected)


def test_a_perturbed_layer_weight_changes_only_through_its_call() -> None:
    real = build_causal_lm("llama", "cpu")
    (ids,), kwargs = causal_lm_inputs("cpu")
    ir = _outlined(_hf("llama"))
    weights = {k: v.clone() for k, v in {**dict(real.named_buffers()), **real.state_dict()}.items()}
    base = torch_ir.run(ir, weights, ids, **kwargs)
    weights["model.layers.1.mlp.down_proj.weight"] += 0.5
    changed = torch_ir.run(ir, weights, ids, **kwargs)
    assert not torch.allclose(
        base["logits"], changed["logits"]
    )  # the call of layer 1 binds layer 1's weights, not layer 0's


def test_text_and_json_round_trip_a_module_with_functions() -> None:
    ir = _outlined(_hf("gpt2"))
    text = ir.to_text()
    assert "\n  func private gpt2_block graph(" in text and 'callee="gpt2_block"' in text
    assert parse_module(text).to_text() == text
    doc = json.loads(dumps(ir))
    functions = doc["module"]["functions"]
    assert [(f["name"], f.get("public", True)) for f in functions] == [("forward", True), ("gpt2_block", False)]
    assert loads(dumps(ir)) == ir


def test_outlining_makes_the_file_smaller() -> None:
    flat, ir = _hf("llama", "none"), _hf("llama", "none")
    _outlined(ir)
    assert len(dumps(ir)) < 0.8 * len(dumps(flat))  # two layers; the saving grows with the layer count


def test_passes_run_once_per_function_body() -> None:
    ir = _outlined(_hf("llama", "none"))
    body = next(f.graph for f in ir.functions.values() if not f.public)
    seen: list[str] = []

    from dataclasses import dataclass
    from typing import ClassVar

    from torch_ir.passes import Pass, PassContext, PassResult

    @dataclass(frozen=True)
    class Count(Pass):
        name: ClassVar[str] = "test-count-functions"
        scope: ClassVar[str] = "function"

        def run(self, graph: torch_ir.Graph, ctx: PassContext) -> PassResult:
            seen.append(ctx.function)
            return PassResult(graph, False)

    PassManager([Count()]).run(ir)
    assert seen == ["forward", "llama_decoder_layer"]
    before = sum(1 for n in body.nodes if n.op_type == "aten._assert_tensor_metadata.default")
    PassManager("canonicalize").run(ir)
    assert before and not any(n.op_type == "aten._assert_tensor_metadata.default" for n in body.nodes)


MODULE = """\
module {
  weight @a.0.w : f32[4,4] parameter
  weight @a.1.w : f32[4,4] parameter
  func forward graph(%x: f32[2,4]) {
    %c0 = func.call(%x, @a.0.w) {callee="block"} : (f32[2,4], f32[4,4]) -> f32[2,4]
    %c1 = func.call(%c0, @a.1.w) {callee="block"} : (f32[2,4], f32[4,4]) -> f32[2,4]
    return %c1
  }
  func private block graph(%h: f32[2,4], %w: f32[4,4]) {
    %m = aten.matmul.default(%h, %w) : (f32[2,4], f32[4,4]) -> f32[2,4]
    %r = aten.relu.default(%m) : (f32[2,4]) -> f32[2,4]
    return %r
  }
}"""


def test_the_interpreter_runs_calls_with_each_sites_weights() -> None:
    ir = parse_module(MODULE)
    ir.verify()
    w0, w1, x = torch.randn(4, 4), torch.randn(4, 4), torch.randn(2, 4)
    got = torch_ir.run(ir, {"a.0.w": w0, "a.1.w": w1}, x)
    torch.testing.assert_close(got, torch.relu(torch.relu(x @ w0) @ w1))
    PassManager("inline").run(ir)
    assert [n.op_type for n in ir.graph.nodes] == ["aten.matmul.default", "aten.relu.default"] * 2
    assert list(ir.functions) == ["forward"]
    torch.testing.assert_close(torch_ir.run(ir, {"a.0.w": w0, "a.1.w": w1}, x), got)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ('callee="block"} : (f32[2,4], f32[4,4]) -> f32[2,4]\n    return %c1', r"calls 'nowhere'"),
        ("%c1 = func.call(%c0, @a.1.w)", r"passes 1 operands, but block takes 2"),
        ("weight @a.0.w : f32[4,8]", r"operand 1 \(@a.0.w\) is f32\[4,8\], which does not fit"),
        ("%r = aten.relu.default(%m)", r"cycle: block -> block"),
    ],
)
def test_the_verifier_refuses_bad_calls(edit: str, message: str) -> None:
    text = MODULE
    if edit.startswith('callee="block"} : (f32[2,4], f32[4,4]) -> f32[2,4]\n    return'):
        text = text.replace(
            '%c1 = func.call(%c0, @a.1.w) {callee="block"}', '%c1 = func.call(%c0, @a.1.w) {callee="nowhere"}'
        )
    elif edit.startswith("%c1"):
        text = text.replace("%c1 = func.call(%c0, @a.1.w)", "%c1 = func.call(%c0)").replace(
            '{callee="block"} : (f32[2,4], f32[4,4]) -> f32[2,4]\n    return %c1',
            '{callee="block"} : (f32[2,4]) -> f32[2,4]\n    return %c1',
        )
    elif edit.startswith("weight"):
        text = text.replace("weight @a.0.w : f32[4,4]", "weight @a.0.w : f32[4,8]").replace(
            '%c0 = func.call(%x, @a.0.w) {callee="block"} : (f32[2,4], f32[4,4])',
            '%c0 = func.call(%x, @a.0.w) {callee="block"} : (f32[2,4], f32[4,8])',
        )
    else:
        text = text.replace(
            "%r = aten.relu.default(%m) : (f32[2,4]) -> f32[2,4]",
            '%r = func.call(%m, %w) {callee="block"} : (f32[2,4], f32[4,4]) -> f32[2,4]',
        )
    with pytest.raises(VerificationError, match=message):
        parse_module(text).verify()


def test_callee_names_come_from_the_block_class() -> None:
    ir = _outlined(_hf("mixtral"))
    names = [callee_name(n) for n in ir.graph.nodes if n.op_type == CALL_OP]
    assert names == ["mixtral_decoder_layer"] * TINY["mixtral"]["num_hidden_layers"]


def test_statistics_count_a_body_once_per_call() -> None:
    from torch_ir.analysis.statistics import call_figures, compute_statistics

    ir, flat = parse_module(MODULE), parse_module(MODULE)
    PassManager("inline").run(flat)
    outlined, inlined = compute_statistics(ir), compute_statistics(flat)
    assert outlined.flops == inlined.flops > 0 and outlined.macs == inlined.macs
    assert outlined.flops_by_op == inlined.flops_by_op and CALL_OP not in outlined.flops_by_op
    assert outlined.activation_bytes == inlined.activation_bytes and outlined.uncounted_ops == []
    assert outlined.peak_activation_bytes >= inlined.peak_activation_bytes
    assert call_figures(ir)["block"].flops * 2 == outlined.flops  # one body, two calls
    assert CALL_OP in compute_statistics(ir.graph).uncounted_ops  # a graph alone cannot see its callees


def test_verify_localizes_a_divergence_inside_a_call() -> None:
    from tests.testing.perturbed import verify_with_perturbed
    from torch_ir import verify_ir_with_state_dict

    ir = _outlined(_hf("llama"))
    model = build_causal_lm("llama", "cpu")
    args, kwargs = causal_lm_inputs("cpu")
    ok, report = verify_ir_with_state_dict(ir, model.state_dict(), model, args, kwargs)
    assert ok, str(report)
    report = verify_with_perturbed(ir, model, args, "model.layers.1.self_attn.v_proj.weight", kwargs)
    body = next(f.graph for f in ir.functions.values() if not f.public)
    (v_proj,) = body.users(body.value("self_attn.v_proj.weight"))
    divergence = report.divergence
    assert divergence.module_path == "model.layers.1.self_attn.v_proj"
    assert (divergence.site.call, divergence.site.node) == ("model.layers.1", v_proj.name)
    sites = {e.site.call for e in report.node_errors if e.site is not None}
    assert sites == {"model.layers.0", "model.layers.1"}  # layer 0's body compared too, within tolerance
    assert all(e.passed for e in report.node_errors if e.site is not None and e.site.call == "model.layers.0")


@pytest.mark.parametrize(
    ("module_type", "taken", "name"),
    [
        ("transformers.models.llama.modeling_llama.LlamaDecoderLayer", (), "llama_decoder_layer"),
        ("GPT2Block", ("gpt2_block",), "gpt2_block_2"),
        ("GPT2Block", ("gpt2_block", "gpt2_block_2"), "gpt2_block_3"),
        ("pkg.MLPBlock", (), "mlp_block"),
        ("pkg.3DConv", (), "_3_d_conv"),
        ("pkg.Odd-Name", (), "odd_name"),
        ("pkg.", (), "block"),
        ("", (), "block"),
    ],
)
def test_callee_names_are_identifiers_made_from_the_class(module_type: str, taken: tuple[str, ...], name: str) -> None:
    from torch_ir.ir.calls import block_function_name

    assert block_function_name(set(taken), module_type) == name


def test_copy_nodes_copies_names_literals_and_maps_operands() -> None:
    from torch_ir.ir import Graph, parse_graph
    from torch_ir.ir.calls import copy_nodes

    source = parse_graph(
        "graph(%x: f32[2,3], %y: f32[2,3]) {\n"
        "  %cat = aten.cat.default([%x, %y], 1) : (f32[2,3], f32[2,3]) -> f32[2,6]\n"
        "  %v = aten.view.default(%cat, [4, 3]) : (f32[2,6]) -> f32[4,3]\n"
        "  return %v\n"
        "}"
    )
    cat, view = source.nodes
    target = Graph()
    x, y = target.add_input("a", source.inputs[0].type), target.add_input("b", source.inputs[1].type)
    env = {id(source.inputs[0]): x, id(source.inputs[1]): y}
    copy_nodes(target, [cat, view], env, keep_unmapped=False)
    new_cat, new_view = target.nodes
    assert [n.name for n in target.nodes] == ["cat", "v"] and [v.name for v in new_view.outputs] == ["v"]
    assert new_cat.args[0] == [x, y] and new_cat.args[1] == 1 and new_view.args[0] is new_cat.outputs[0]
    assert new_view.args[1] == [4, 3] and new_view.args[1] is not view.args[1]  # literals copied, not shared
    assert env[id(view.outputs[0])] is new_view.outputs[0]

    partial = Graph()
    only_x = {id(source.inputs[0]): partial.add_input("a", source.inputs[0].type)}
    with pytest.raises(KeyError):  # every operand must be mapped
        copy_nodes(partial, [cat], dict(only_x), keep_unmapped=False)
