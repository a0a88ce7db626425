"""A fast, diverse subset of PyTorch's OpInfo database through torch-ir (the full sweep is ``make optest``).

Each op's first float32 CPU sample (``op#k``: its sample k) is extracted on meta, saved, loaded, run by
the interpreter and compared with eager PyTorch, exactly as ``tests/opinfo/sweep.py`` does for every op.
Ops that fail today are strict xfails naming the cause: when a fix makes one pass, its test fails until
the mark is removed.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.opinfo.sweep import OpModule, check_op, difference, first_sample, split_name

pytest.importorskip("expecttest", reason="PyTorch's op database needs expecttest (dev extra)")


def _xfail(op: str, reason: str) -> Any:
    return pytest.param(op, marks=pytest.mark.xfail(strict=True, reason=reason), id=op)


OPS = [
    # elementwise
    "add",
    "mul",
    "div.no_rounding_mode",
    "where",
    "clamp",
    "pow",
    "nn.functional.gelu",
    # reductions and scans
    "sum",
    "std",
    "amax",
    "logsumexp",
    "cumsum",
    "masked.sum",
    "masked.softmax",
    "masked.norm",
    "masked.cumsum",
    "masked.amax#1",
    # indexing and scatter
    "__getitem__",
    "index_select",
    "gather",
    "take_along_dim",
    "index_put",
    "index_add",
    "scatter",
    "masked_fill",
    "tensor_split",
    # linear algebra
    "matmul",
    "linalg.det",
    "linalg.solve",
    "linalg.vector_norm",
    # convolution, pooling, resampling
    "nn.functional.conv2d",
    "nn.functional.max_pool2d",
    "nn.functional.avg_pool2d",
    "nn.functional.interpolate.bilinear",
    # nn.functional
    "nn.functional.layer_norm",
    "nn.functional.cross_entropy",
    "nn.functional.embedding",
    "nn.functional.pad.constant",
    # shape, factories, random
    "cat",
    "permute",
    "arange",
    "gradient",
    "gradient#6",
    "zero_",
    "normal",
    "nn.functional.dropout",
    "histogram",
    _xfail("histogramdd", "extract-fails: annotate-shapes cannot type its list of bin edges (no meta kernel)"),
    _xfail("sparse.mm.reduce", "extract-fails: sparse layouts have no kernel under export's fake tensors"),
]


@pytest.fixture(scope="module")
def op_db() -> dict[str, Any]:
    from tests.opinfo.sweep import load_op_db

    return load_op_db()


@pytest.mark.parametrize("name", OPS)
def test_opinfo_op(op_db: dict[str, Any], name: str) -> None:
    op, index = split_name(name)
    result = check_op(op_db[op], sample_index=index)
    assert result.baseline == "pass", f"the torch.export baseline fails: {result.baseline_reason}"
    assert result.category == "pass", f"{result.category} ({result.stage}): {result.reason}"


def test_difference_reports_values_shapes_and_structure() -> None:
    x = torch.arange(4.0)
    assert difference(x.clone(), x, shape_only=False) is None
    assert "not close" in (difference(x + 1, x, shape_only=False) or "")
    assert difference(x + 1, x, shape_only=True) is None
    assert "eager gives float32[4]" in (difference(x[:2], x, shape_only=True) or "")
    assert "1 output(s), eager gives 2" in (difference(x, (x, x), shape_only=False) or "")
    nan = torch.tensor([float("nan")])
    assert difference(nan.clone(), nan, shape_only=False) is None


def test_op_module_takes_the_sample_tensors_as_inputs(op_db: dict[str, Any]) -> None:
    op = op_db["index_put"]
    sample = first_sample(op)
    module = OpModule(op, sample)
    tensors = [sample.input, *[t for t in sample.args[0] if isinstance(t, torch.Tensor)], sample.args[1]]
    assert [t.shape for t in module.example_inputs] == [t.shape for t in tensors]
    assert dict(module.named_parameters()) == {}
