"""Custom operators: the op registry, fake-kernel-only torch.library ops, and ops torch does not know."""

from __future__ import annotations

import pytest
import torch

from torch_ir import InterpreterError, TorchIRError, extract_ir, parse_graph, register_op, verify_ir
from torch_ir.ops import get_kernel, get_shape_fn, unregister_op
from torch_ir.runtime.interpreter import Interpreter

torch.library.define("torch_ir_fakeonly::swish_scale", "(Tensor x, float scale) -> Tensor")


@torch.library.register_fake("torch_ir_fakeonly::swish_scale")
def _swish_scale_fake(x: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.empty_like(x)


class FakeOnly(torch.nn.Module):
    """linear -> a custom op that has only a fake kernel -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(6, 6)
        self.b = torch.nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.ops.torch_ir_fakeonly.swish_scale(self.a(x), 2.0))


def _swish_scale(x: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.nn.functional.silu(x) * scale


def test_both_spellings_and_overload_less_registration() -> None:
    def kernel(x):
        return x

    def shape_fn(*types):
        return types[0]

    register_op("torch_ir_test_ns::my_op", kernel=kernel, shape_fn=shape_fn)
    try:
        assert get_kernel("torch_ir_test_ns.my_op.default") is kernel
        assert get_kernel("torch_ir_test_ns.my_op.other") is kernel
        assert get_kernel("torch_ir_test_ns::my_op") is kernel
        assert get_shape_fn("torch_ir_test_ns.my_op.default") is shape_fn
        with pytest.raises(TorchIRError, match="registered already"):
            register_op("torch_ir_test_ns.my_op", kernel=kernel)
        register_op("torch_ir_test_ns::my_op.special", kernel=shape_fn)
        assert get_kernel("torch_ir_test_ns.my_op.special") is shape_fn
        assert get_kernel("torch_ir_test_ns.my_op.default") is kernel
    finally:
        unregister_op("torch_ir_test_ns::my_op")
        unregister_op("torch_ir_test_ns::my_op.special")
    assert get_kernel("torch_ir_test_ns.my_op.default") is None
    assert get_shape_fn("aten.relu.default") is None
    with pytest.raises(TorchIRError, match="kernel=, a shape_fn="):
        register_op("a::b")


def test_fake_only_op_extracts_and_runs_once_a_kernel_is_registered() -> None:
    with torch.device("meta"):
        meta = FakeOnly().eval()
    ir = extract_ir(meta, (torch.randn(3, 6, device="meta"),))
    assert any(n.op_type == "torch_ir_fakeonly.swish_scale.default" for n in ir.nodes)
    torch.manual_seed(0)
    real = FakeOnly().eval()
    x = torch.randn(3, 6)
    with pytest.raises(InterpreterError, match=r"swish_scale.*register_op\('torch_ir_fakeonly::swish_scale'"):
        Interpreter(ir, real)(x)
    register_op("torch_ir_fakeonly::swish_scale", kernel=_swish_scale)
    try:
        out = Interpreter(ir, real)(x)
        expected = real.b(_swish_scale(real.a(x), 2.0))
        torch.testing.assert_close(out, expected)
    finally:
        unregister_op("torch_ir_fakeonly::swish_scale")


def test_op_unknown_to_torch_runs_with_a_registered_kernel() -> None:
    ir = parse_graph(
        "graph(%x: f32[4], %y: f32[4]) {\n"
        "  %z = userfused.mul_add.default(%x, %y) {alpha=2.0} : (f32[4], f32[4]) -> f32[4]\n"
        "  return %z\n}"
    )
    with pytest.raises(InterpreterError, match=r"no kernel for op userfused\.mul_add\.default"):
        Interpreter(ir)
    register_op("userfused::mul_add", kernel=lambda x, y, alpha: x * alpha + y, shape_fn=lambda *t, **a: t[0])
    try:
        x, y = torch.randn(4), torch.randn(4)
        torch.testing.assert_close(Interpreter(ir)(x, y), x * 2.0 + y)
    finally:
        unregister_op("userfused::mul_add")


def test_registered_torch_library_op_verifies() -> None:
    from tests.models import get_model

    case = get_model("custom_op")
    args, _ = case.inputs("meta")
    ir = extract_ir(case.build_meta(), args)
    real = case.build_real()
    ok, report = verify_ir(ir, real, case.inputs("cpu")[0])
    assert ok, str(report)
