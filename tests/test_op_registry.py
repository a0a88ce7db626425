"""The op registry: one OpInfo per op type, read by the interpreter, the statistics and the passes."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from torch_ir import IRError, TensorType, TorchIRError, parse_graph, register_op
from torch_ir.analysis.statistics import compute_statistics
from torch_ir.ops import OpInfo, op_info, registry, unregister_op
from torch_ir.ops.canonical import COMMUTATIVE
from torch_ir.ops.cost import cost_model, custom_cost
from torch_ir.ops.type_inference import convert_attr
from torch_ir.passes.annotate_shapes import AnnotateShapes
from torch_ir.passes.canonicalize import Canonicalize
from torch_ir.passes.cse import CSE
from torch_ir.passes.eliminate_dead_nodes import EliminateDeadNodes
from torch_ir.runtime.interpreter import Interpreter

OP = "torch_ir_registry_test.scale_rows.default"


def _scale_rows(x: torch.Tensor) -> torch.Tensor:
    return x * 3.0


def _scale_rows_shape(types: list[TensorType], attrs: dict[str, Any]) -> TensorType:
    return TensorType(types[0].shape, types[0].dtype)


def _scale_rows_cost(ins: list[tuple[int, ...]], outs: list[tuple[int, ...]], attrs: dict[str, Any]) -> tuple[int, int]:
    return 7 * math.prod(outs[0]), 0


@pytest.fixture
def restore_registry() -> Iterator[None]:
    saved = registry.snapshot_registrations()
    yield
    registry.restore_registrations(saved)


def _program(result_type: str = "f32[4,6]") -> str:
    """Two equal calls of the custom op feeding an add, and a third call nothing reads."""
    return f"""graph(%x: f32[4,6]) {{
  %a = {OP}(%x) : (f32[4,6]) -> {result_type}
  %b = {OP}(%x) : (f32[4,6]) -> {result_type}
  %dead = {OP}(%x) : (f32[4,6]) -> {result_type}
  %c = aten.add.Tensor(%a, %b) {{alpha=1}} : ({result_type}, {result_type}) -> f32[4,6]
  return %c
}}"""


def _count(graph: Any, op_type: str) -> int:
    return sum(1 for n in graph.nodes if n.op_type == op_type)


@pytest.mark.usefixtures("restore_registry")
def test_one_registration_gives_a_custom_op_standing_everywhere() -> None:
    register_op(
        "torch_ir_registry_test::scale_rows",
        kernel=_scale_rows,
        shape_fn=_scale_rows_shape,
        cost=_scale_rows_cost,
        pure=True,
    )
    # annotate-shapes types it through the shape function
    graph = parse_graph(_program("?"))
    AnnotateShapes()(graph)
    assert str(graph.value("a").type) == "f32[4,6]" and str(graph.value("dead").type) == "f32[4,6]"
    # the interpreter runs its kernel
    x = torch.randn(4, 6)
    torch.testing.assert_close(Interpreter(graph)(x), 6.0 * x)
    # the statistics count its FLOPs with its cost model (7 per element, three calls)
    stats = compute_statistics(graph)
    assert stats.flops_by_op[OP] == 3 * 7 * 24 and OP not in stats.uncounted_ops
    assert stats.flops == 3 * 7 * 24 + 24
    # pure: the dead call goes, the duplicate merges, and the program computes the same
    EliminateDeadNodes()(graph)
    assert _count(graph, OP) == 2
    CSE()(graph)
    assert _count(graph, OP) == 1
    torch.testing.assert_close(Interpreter(graph)(x), 6.0 * x)
    # create_op types a new node through the shape function
    node = graph.create_op(OP, graph.inputs[0])
    assert node.outputs[0].type == TensorType((4, 6), "float32")


@pytest.mark.parametrize("pure", [False, None])
@pytest.mark.usefixtures("restore_registry")
def test_an_impure_custom_op_is_never_removed_or_merged(pure: bool | None) -> None:
    register_op("torch_ir_registry_test::scale_rows", kernel=_scale_rows, shape_fn=_scale_rows_shape, pure=pure)
    graph = parse_graph(_program())
    EliminateDeadNodes()(graph)
    CSE()(graph)
    assert _count(graph, OP) == 3
    info = op_info(OP)
    assert info.has_side_effects and not info.pure and info.known


@pytest.mark.usefixtures("restore_registry")
def test_registration_spellings_name_one_op_and_clear_the_cache() -> None:
    before = op_info(OP)
    assert not before.known and before.cost is None and not before.pure
    register_op("torch_ir_registry_test.scale_rows.default", kernel=_scale_rows, commutative=True)
    after = op_info(OP)
    assert after is not before and after.kernel is _scale_rows and after.commutative
    with pytest.raises(TorchIRError, match="registered already"):
        register_op("torch_ir_registry_test::scale_rows.default", kernel=_scale_rows)
    unregister_op("torch_ir_registry_test::scale_rows.default")
    register_op("torch_ir_registry_test::scale_rows", cost=_scale_rows_cost)  # every overload
    assert op_info(OP).cost is not None and op_info("torch_ir_registry_test.scale_rows.other").cost is not None
    assert op_info(OP).kernel is None
    unregister_op("torch_ir_registry_test::scale_rows")
    assert op_info(OP).cost is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cost": 3}, "cost must be callable"),
        ({"pure": "yes"}, "pure must be True, False or None"),
        ({"commutative": 1}, "commutative must be True, False or None"),
        ({"canonical": "noop"}, "canonical='noop'"),
        ({}, "give a kernel="),
    ],
)
def test_register_op_refuses_bad_traits(options: dict[str, Any], message: str) -> None:
    with pytest.raises(TorchIRError, match=message):
        register_op("torch_ir_registry_test::scale_rows", **options)
    assert registry.get_entry(OP) is None


@pytest.mark.usefixtures("restore_registry")
def test_a_failing_cost_function_names_the_op() -> None:
    register_op("torch_ir_registry_test::scale_rows", cost=lambda ins, outs, attrs: ins[5][0])
    with pytest.raises(IRError, match=r"cost function of torch_ir_registry_test\.scale_rows\.default failed"):
        compute_statistics(parse_graph(_program()))


@pytest.mark.usefixtures("restore_registry")
def test_canonical_class_of_a_custom_op_drives_canonicalize() -> None:
    graph = parse_graph(_program())
    Canonicalize()(graph)
    assert _count(graph, OP) == 3
    register_op("torch_ir_registry_test::scale_rows", canonical="identity", pure=True)
    Canonicalize()(graph)
    assert _count(graph, OP) == 0


def test_schema_gives_mutated_and_aliased_operands() -> None:
    add_ = op_info("aten.add_.Tensor")
    assert add_.mutates == ("self",) and add_.aliases == ("self",) and add_.has_side_effects
    view = op_info("aten.view.default")
    assert view.aliases == ("self",) and view.mutates == () and view.pure and view.view
    assert op_info("aten.split.Tensor").aliases == ("self",)
    assert op_info("aten.add.out").mutates == ("out",)
    add = op_info("aten.add.Tensor")
    assert add.mutates == () and add.aliases == () and add.pure
    assert [a.name for a in add.arguments or ()] == ["self", "other", "alpha"]
    assert add.arguments is not None and add.arguments[2].kwarg_only and add.arguments[2].default == 1
    assert op_info("aten._foreach_add_.List").mutates == ("self",)


def test_commutative_trait() -> None:
    add = op_info("aten.add.Tensor")
    assert add.commutative and add.commutes({"alpha": 1}) and add.commutes({})
    assert not add.commutes({"alpha": 2})
    for op_type in ("aten.mul.Tensor", "aten.maximum.default", "aten.logical_xor.default", "aten.eq.Tensor"):
        assert op_info(op_type).commutes({}), op_type
    for op_type in ("aten.sub.Tensor", "aten.add.Scalar", "aten.mm.default", "aten.lt.Tensor", "operator.sub"):
        assert not op_info(op_type).commutative, op_type
    assert op_info("operator.mul").commutative and op_info("torch.sym_max").commutative


def test_commutative_ops_do_commute() -> None:
    a, b = torch.randn(3, 4), torch.randn(1, 4)
    ints = torch.randint(0, 5, (3, 4)), torch.randint(0, 5, (1, 4))
    checked = 0
    for op_type in sorted(t for t in COMMUTATIVE if t.startswith("aten.")):
        fn = op_info(op_type).kernel
        assert fn is not None, op_type
        x, y = ints if "bitwise" in op_type or "logical" in op_type else (a, b)
        torch.testing.assert_close(fn(x, y), fn(y, x), msg=op_type)
        checked += 1
    assert checked >= 10


def test_effects_randomness_and_untrusted_defaults() -> None:
    assert "from_file" in op_info("aten.from_file.default").side_effect_reason
    assert not op_info("aten.from_file.default").untrusted_ok
    assert op_info("aten.add.Tensor").untrusted_ok and op_info("operator.mul").untrusted_ok
    assert not op_info("builtins.exec").untrusted_ok and not op_info("builtins.exec").known
    rand = op_info("aten.rand.default")
    assert rand.random and rand.nondeterministic and not rand.pure
    assert op_info("aten.bernoulli.p").random  # tagged nondeterministic_seeded, name marker too
    unknown = op_info("nolib.nothing.default")
    assert isinstance(unknown, OpInfo) and unknown.has_side_effects and unknown.kernel is None
    assert unknown.cost is None and unknown.arguments is None and not unknown.untrusted_ok
    assert op_info("not an op type at all").has_side_effects
    assert op_info("aten.view.default").reads_strides and not op_info("aten.reshape.default").reads_strides


@pytest.mark.usefixtures("restore_registry")
def test_a_registered_kernel_vouches_for_its_op_but_a_shape_function_does_not() -> None:
    # The plugin that registers a kernel is one the user named (--plugin); the file cannot name it.
    assert not op_info("aten.zfill.default").untrusted_ok  # off the allow-list: a TorchScript string op
    register_op("aten::zfill", shape_fn=lambda types, attrs: types[0])
    assert not op_info("aten.zfill.default").untrusted_ok
    register_op("aten::zfill", kernel=lambda s, width: s, replace=True)
    assert op_info("aten.zfill.default").untrusted_ok


def test_importing_the_registry_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import torch_ir.ops\n"
        "from torch_ir.ops import op_info\n"
        "info = op_info('aten.mm.default')\n"
        "assert info.cost is not None and not info.cost.free and op_info('aten.view.default').view\n"
        "assert op_info('aten.clone.default').canonical == 'copy' and op_info('aten.mul.Tensor').commutative\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert op_info('aten.add_.Tensor').mutates == ('self',)\n"
        "assert 'torch' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("op", "inputs", "outputs", "kind", "figures"),
    [
        # a MAC is 2 FLOPs, a bias 1 per output element
        ("linear", [(4, 16), (32, 16), (32,)], [(4, 32)], "linear", (2 * 4 * 16 * 32 + 4 * 32, 4 * 16 * 32)),
        ("linear", [(4, 16), (32, 16)], [(4, 32)], "linear", (2 * 4 * 16 * 32, 4 * 16 * 32)),
        ("mm", [(3, 4), (4, 5)], [(3, 5)], "matmul", (2 * 60, 60)),
        ("matmul", [(7,), (7,)], [()], "matmul", (14, 7)),
        ("addmm", [(5,), (3, 4), (4, 5)], [(3, 5)], "matmul", (2 * 60 + 15, 60)),
        ("addbmm", [(3, 5), (2, 3, 4), (2, 4, 5)], [(3, 5)], "matmul", (2 * 120 + 15, 120)),
        ("convolution", [(1, 3, 8, 8), (8, 3, 3, 3), (8,)], [(1, 8, 6, 6)], "convolution", (2 * 7776 + 288, 7776)),
        ("conv2d", [(1, 3, 8, 8), (8, 3, 3, 3)], [(1, 8, 6, 6)], "convolution", (2 * 7776, 7776)),
        # QK^T and AV over 8 heads of 6 x 6 scores of width 8, and 5 FLOPs per score for the softmax
        ("scaled_dot_product_attention", [(2, 4, 6, 8)] * 3, [(2, 4, 6, 8)], "attention", (2 * 4608 + 5 * 288, 4608)),
        ("sum", [(4, 5)], [(5,)], "reduction", (20, 0)),
        ("add", [(4, 5), (4, 5)], [(4, 5)], "elementwise", (20, 0)),
        ("softmax", [(4, 5)], [(4, 5)], "per-element", (5 * 20, 0)),
        ("gelu", [(4, 5)], [(4, 5)], "per-element", (8 * 20, 0)),
        ("batch_norm", [(4, 5)], [(4, 5)], "per-element", (2 * 20, 0)),
        ("view", [(4, 5)], [(20,)], "free", (0, 0)),
    ],
)
def test_cost_models_give_the_documented_figures(
    op: str, inputs: list[tuple[int, ...]], outputs: list[tuple[int, ...]], kind: str, figures: tuple[int, int]
) -> None:
    model = cost_model(op)
    assert model is not None and model.kind == kind and model.free == (kind == "free")
    assert model(inputs, outputs, {}) == figures


def test_ops_without_a_model_and_custom_models() -> None:
    assert cost_model("einsum") is None and cost_model("no_such_op") is None
    custom = custom_cost(lambda ins, outs, attrs: 3 * len(ins))
    assert (custom.kind, custom.custom, custom.free) == ("custom", True, False)
    assert custom([(1,), (2,)], [(1,)], {}) == (6, 0)  # FLOPs alone: no MACs
    assert custom_cost(lambda ins, outs, attrs: (7.0, 2.0))([], [], {}) == (7, 2)


def _argument(op: Any, name: str) -> Any:
    return next(a for a in op._schema.arguments if a.name == name)


def test_attributes_from_files_become_what_the_schema_argument_takes_for_type_inference() -> None:
    full, clamp, clone = torch.ops.aten.full.default, torch.ops.aten.clamp.default, torch.ops.aten.clone.default
    assert convert_attr("float16", _argument(full, "dtype")) is torch.float16
    assert convert_attr("strided", _argument(full, "layout")) is torch.strided
    assert convert_attr("channels_last", _argument(clone, "memory_format")) is torch.channels_last
    assert convert_attr("cuda:1", _argument(full, "device")) == torch.device("meta")  # inference runs on meta
    for bad in ("float99", "_C", "not an identifier", "Tensor"):
        with pytest.raises(ValueError, match="is not a torch dtype, layout or memory format"):
            convert_attr(bad, _argument(full, "dtype"))
    # non-finite numbers as text, for float and Scalar arguments (torch names a Scalar "number")
    assert convert_attr("-inf", _argument(full, "fill_value")) == -math.inf
    assert convert_attr("Infinity", _argument(clamp, "min")) == math.inf
    assert math.isnan(convert_attr("nan", _argument(torch.ops.aten.leaky_relu.default, "negative_slope")))
    assert convert_attr(["inf", 1.0], _argument(torch.ops.aten.upsample_nearest2d.vec, "scale_factors")) == [
        math.inf,
        1.0,
    ]
    assert convert_attr("inf", _argument(torch.ops.aten.topk.default, "k")) == "inf"  # an int argument: left as is
    assert convert_attr("sum", _argument(torch.ops.aten.scatter_reduce.two, "reduce")) == "sum"
    assert convert_attr({"real": 1.0, "imag": -2.0}, _argument(full, "fill_value")) == complex(1, -2)
    assert convert_attr(None, _argument(full, "dtype")) is None


def test_a_fill_value_written_as_text_gets_its_type_inferred() -> None:
    graph = parse_graph("""graph() {
  %f = aten.full.default([2]) {fill_value="-inf", dtype="float32", layout=null, device=null, pin_memory=null} : () -> ?
  return %f
}""")
    assert AnnotateShapes()(graph).modified and str(graph.value("f").type) == "f32[2]"


def test_inferred_types_are_cached_per_operand_literal_attribute_and_static_type() -> None:
    graph = parse_graph("""graph(%x: f32[2,16], %y: f32[4,16], %s: f32[n,16]) {
  symbol n : 1..8
  return %x
}""")
    x, y, s = graph.inputs

    def typed(*args: Any, **operands: Any) -> str:
        return str(graph.create_op(*args, **operands).output.type)

    # the same call twice, then calls that differ in one literal operand, one attribute, or the operand type
    assert typed("aten.sum.dim_IntList", x, [0]) == typed("aten.sum.dim_IntList", x, [0]) == "f32[16]"
    assert typed("aten.sum.dim_IntList", x, [1]) == "f32[2]"
    assert typed("aten.sum.dim_IntList", y, [1]) == "f32[4]"
    assert typed("aten.sum.dim_IntList", x, [1], keepdim=True) == "f32[2,1]"
    assert typed("aten.to.dtype", x, dtype=torch.float16) == "f16[2,16]"
    assert typed("aten.to.dtype", x, dtype=torch.int32) == "i32[2,16]"
    assert typed("aten.cat.default", [x, y]) == "f32[6,16]"
    assert typed("aten.cat.default", [y, y]) == "f32[8,16]"
    assert typed("aten.sum.dim_IntList", s, [1]) == "f32[n]"  # symbolic: not from the cache
