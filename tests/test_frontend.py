"""The torch.export frontend: what the IR records about values, nodes, weights and structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.models import MODELS, get_model
from torch_ir import ExportError, ScalarType, TensorType, extract_ir
from torch_ir.ir import parse_graph


def _extract(name: str, **kwargs):
    case = get_model(name)
    args, kw = case.inputs("meta")
    return extract_ir(
        case.build_meta(), args, example_kwargs=kw, dynamic_shapes=case.dynamic_shapes, pipeline="none", **kwargs
    )


@pytest.mark.parametrize("case", MODELS, ids=lambda c: f"{c.category}-{c.name}")
def test_every_model_extracts_on_meta_and_verifies(case) -> None:
    model = case.build_meta()
    before = {n: (id(p), p.device.type) for n, p in model.named_parameters()}
    args, kwargs = case.inputs("meta")
    ir = extract_ir(model, args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes, pipeline="none")
    ir.verify()
    assert len(ir.nodes) > 0
    assert all(v.type is not None for n in ir.nodes for v in n.outputs)
    assert {n: (id(p), p.device.type) for n, p in model.named_parameters()} == before  # model unchanged
    text = ir.to_text()
    assert str(parse_graph(text)) == text


def test_seed_api_shapes_and_dtypes() -> None:
    ir = _extract("two_tower")
    linear = ir.nodes[0]
    assert linear.op_type == "aten.linear.default"
    assert [t.shape for t in linear.inputs] == [(2, 8), (16, 8), (16,)]
    assert [t.shape for t in linear.outputs] == [(2, 16)]
    assert linear.outputs[0].dtype == "float32"
    assert [v.name for v in ir.inputs] == ["a", "b"]
    assert ir.graph.output_structure == {
        "kind": "tuple",
        "items": [{"kind": "output", "index": 0}, {"kind": "output", "index": 1}],
    }


def test_attrs_are_keyed_by_schema_name_and_json_typed() -> None:
    ir = _extract("residual_mlp")
    ln = next(n for n in ir.nodes if n.op_type == "aten.layer_norm.default")
    assert ln.attrs == {"normalized_shape": [16], "eps": 1e-05, "cudnn_enable": False}
    cat = next(n for n in ir.nodes if n.op_type == "aten.cat.default")
    assert len(cat.args) == 1 and len(cat.args[0]) == 2 and cat.attrs == {"dim": -1}
    ir = _extract("embedding_mlp")
    arange = next(n for n in ir.nodes if n.op_type.startswith("aten.arange"))
    assert arange.attrs["device"] == "cpu" and arange.attrs["pin_memory"] is False  # traced as the CPU
    dropout = next(n for n in ir.nodes if n.op_type == "aten.dropout.default")
    assert dropout.attrs == {"p": 0.1, "train": False}


def test_module_path_and_source_line() -> None:
    ir = _extract("residual_mlp")
    ln = next(n for n in ir.nodes if n.op_type == "aten.layer_norm.default")
    assert ln.module_path == "blocks.0.0"
    assert ln.meta["module_stack"][-1] == ["blocks.0.0", "torch.nn.modules.normalization.LayerNorm"]
    source = ir.nodes[-1].meta["source"]
    assert source["file"].endswith("skip_connections.py") and source["line"] > 0
    assert "self.out" in source["code"]


def test_weights_kinds_and_persistence() -> None:
    ir = _extract("buffers")
    w = ir.weights
    assert w["fc.weight"].kind == "parameter" and w["fc.weight"].persistent
    assert w["mean"].kind == "buffer" and w["mean"].persistent
    assert w["inv_freq"].kind == "buffer" and not w["inv_freq"].persistent
    assert w["inv_freq"].type == TensorType((4,), "float32")


def test_lifted_constant_keeps_its_known_value() -> None:
    class WithConstant(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.tensor([1.0, 2.0, 3.0])

    ir = extract_ir(WithConstant(), (torch.randn(2, 3),), pipeline="none")
    (const,) = ir.weights.values()
    assert const.kind == "constant" and not const.persistent
    assert const.data == [1.0, 2.0, 3.0]


def test_tied_weights_are_one_storage_with_both_names() -> None:
    ir = _extract("tied_embedding_lm")
    assert ir.weights["embed.weight"].aliases == ("lm_head.weight",)
    assert ir.weights["lm_head.weight"].aliases == ("embed.weight",)
    assert ir.weights["proj.weight"].aliases == ()


def test_multi_result_ops_and_ops_without_results() -> None:
    ir = _extract("sdpa_attention")
    chunk = next(n for n in ir.nodes if n.op_type in ("aten.chunk.default", "aten.split.Tensor"))
    assert len(chunk.outputs) == 3
    assert all(v.type == TensorType((2, 6, 32), "float32") for v in chunk.outputs)
    assert not any("getitem" in n.op_type for n in ir.nodes)

    class Asserting(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.to(torch.float32) + 1

    ir = extract_ir(Asserting(), (torch.randn(2),), pipeline="none")
    asserts = [n for n in ir.nodes if n.op_type == "aten._assert_tensor_metadata.default"]
    assert asserts and asserts[0].outputs == [] and asserts[0].attrs["dtype"] == "float32"


def test_custom_op_keeps_its_namespace() -> None:
    ir = _extract("custom_op")
    custom = next(n for n in ir.nodes if n.op_type.startswith("torch_ir_tests."))
    assert custom.op_type == "torch_ir_tests.scaled_gelu.default"
    assert custom.attrs == {"scale": 0.5}
    assert custom.outputs[0].type == TensorType((3, 20), "float32")


def test_dynamic_batch_is_a_named_symbol_with_range() -> None:
    ir = _extract("dynamic_batch")
    assert ir.inputs[0].shape == ("batch", 12)
    assert ir.graph.symbols["batch"].min == 1 and ir.graph.symbols["batch"].max == 64
    assert ir.outputs[0].shape == ("batch", 3, 4)
    sym = [n for n in ir.nodes if n.outputs and n.outputs[0].type == ScalarType("int")]
    assert all(n.op_type == "aten.sym_size.int" for n in sym)


def test_kwargs_and_dict_outputs_keep_their_structure() -> None:
    ir = _extract("kwargs_dict")
    assert [v.name for v in ir.inputs] == ["x", "mask"]
    _, kwargs_struct = ir.graph.input_structure["items"]
    assert kwargs_struct["kind"] == "dict" and kwargs_struct["keys"] == ["mask", "return_aux"]
    assert kwargs_struct["items"][1] == {"kind": "constant", "value": True}
    out = ir.graph.output_structure
    assert out["kind"] == "dict" and out["keys"] == ["logits", "aux"]
    assert out["items"][1]["kind"] == "tuple"


def test_decompose_core_aten_lowers_linear() -> None:
    ir = _extract("two_tower", decompose="core_aten")
    ops = {n.op_type for n in ir.nodes}
    assert "aten.linear.default" not in ops and "aten.addmm.default" in ops
    with pytest.raises(ExportError, match="decompose must be"):
        _extract("two_tower", decompose="everything")


def test_stages_are_measured_and_printable() -> None:
    ir = _extract("small_cnn")
    names = [s.name for s in ir.stages.stages]
    assert names[:2] == ["export", "convert"]
    assert ir.stages.get("export").seconds > 0
    assert ir.stages.get("export").peak_rss_bytes > 0
    assert "export" in str(ir.stages) and "total" in str(ir.stages)


# ------------------------------------------------------------------ bad input


def test_not_a_module_is_an_export_error() -> None:
    with pytest.raises(ExportError, match="needs a torch.nn.Module, got function"):
        extract_ir(lambda x: x, (torch.randn(2),))


def test_inputs_that_do_not_match_forward() -> None:
    case = get_model("two_tower")
    with pytest.raises(ExportError, match=r"do not match TwoTower.forward\(.*missing a required argument: 'b'"):
        extract_ir(case.build_meta(), (torch.randn(2, 8, device="meta"),))
    with pytest.raises(ExportError, match="could not trace TwoTower"):
        extract_ir(case.build_meta(), (torch.randn(2, 9, device="meta"), torch.randn(2, 12, device="meta")))


def test_data_dependent_control_flow_explains_what_to_try() -> None:
    class Branchy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                return x * 2
            return x - 1

    with pytest.raises(ExportError, match="could not trace Branchy") as info:
        extract_ir(Branchy(), (torch.randn(3),))
    assert "data-dependent" in str(info.value) and "torch.cond" in str(info.value)


def test_no_grad_and_autocast_regions_are_inlined_with_explicit_casts() -> None:
    # autocast("cpu") acts on CPU tensors only: traced on meta its block stays float32, so trace on the CPU
    case = get_model("context_blocks")
    ir = extract_ir(case.build_real(), case.inputs("cpu")[0], pipeline="none")
    assert "functionalize" in [s.name for s in ir.stages.stages]
    ops = [n.op_type for n in ir.nodes]
    assert not any("higher_order" in op or "wrap_with" in op for op in ops)
    casts = [n for n in ir.nodes if n.op_type == "aten._to_copy.default" and n.attrs.get("dtype") == "bfloat16"]
    assert len(casts) == 3  # the input of the autocast linear, its weight and its bias
