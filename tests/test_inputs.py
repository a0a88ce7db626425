"""Input specs (``1x128:int64``, ``attention_mask=1x128:int64``) and dynamic dims (``0=batch:1..64``)."""

from __future__ import annotations

import pytest
import torch

from torch_ir.errors import ModelSpecError
from torch_ir.frontends.inputs import (
    DynamicSpec,
    InputSpec,
    build_inputs,
    dynamic_shapes_for,
    parse_dynamic_spec,
    parse_input_spec,
)


class TwoInputs(torch.nn.Module):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return input_ids if attention_mask is None else input_ids * attention_mask


def test_parse_input_spec_positional_and_named():
    assert parse_input_spec("1x128:int64") == InputSpec((1, 128), "int64")
    assert parse_input_spec("1x3x224x224:float32") == InputSpec((1, 3, 224, 224), "float32")
    assert parse_input_spec("attention_mask=1x128:i64") == InputSpec((1, 128), "int64", "attention_mask")
    assert parse_input_spec("4x8") == InputSpec((4, 8), "float32")
    assert parse_input_spec("scalar:bf16") == InputSpec((), "bfloat16")
    assert str(parse_input_spec("mask=2x3:bool")) == "mask=2x3:bool"


@pytest.mark.parametrize("text", ["", "1x:int64", "x128", "1x128:int99", "1x128:", "=1x2", "a b=1", "1,128"])
def test_malformed_input_spec_is_a_model_spec_error(text):
    with pytest.raises(ModelSpecError, match="spec"):
        parse_input_spec(text)


def test_parse_dynamic_spec():
    assert parse_dynamic_spec("0=batch:1..64") == DynamicSpec(0, "batch", 1, 64, None)
    assert parse_dynamic_spec("input_ids.1=seq:2..2048") == DynamicSpec(1, "seq", 2, 2048, "input_ids")
    assert parse_dynamic_spec("1.0=batch") == DynamicSpec(0, "batch", None, None, 1)
    assert parse_dynamic_spec("0=n:..8") == DynamicSpec(0, "n", None, 8, None)
    assert str(parse_dynamic_spec("input_ids.1=seq:2..2048")) == "input_ids.1=seq:2..2048"


@pytest.mark.parametrize("text", ["batch", "0=", "a=batch", "0=batch:64..1", "0=1x", "x.y.0=b"])
def test_malformed_dynamic_spec(text):
    with pytest.raises(ModelSpecError, match="dynamic dim"):
        parse_dynamic_spec(text)


def test_build_inputs_dtypes_values_and_kwargs():
    args, kwargs, shapes = build_inputs(
        ["1x4:int64", "attention_mask=1x4:int64"], device="cpu", model=TwoInputs(), extra_kwargs={"flag": False}
    )
    assert shapes is None
    assert args[0].dtype == torch.int64 and args[0].shape == (1, 4) and int(args[0].abs().sum()) == 0
    assert set(kwargs) == {"flag", "attention_mask"}
    meta_args, _, _ = build_inputs(["2x3:float16"])
    assert meta_args[0].device.type == "meta" and meta_args[0].dtype == torch.float16


def test_positional_after_named_is_an_error():
    with pytest.raises(ModelSpecError, match="positional"):
        build_inputs(["x=1x2", "1x2"])


def test_dynamic_shapes_are_keyed_by_argument_names_and_share_dims():
    model = TwoInputs()
    args, kwargs, shapes = build_inputs(
        ["2x8:int64", "attention_mask=2x8:int64"],
        ["0=batch:1..64", "input_ids.1=seq:2..512", "attention_mask.0=batch:1..64", "attention_mask.1=seq:2..512"],
        model=model,
    )
    assert set(shapes) == {"input_ids", "attention_mask"}
    assert shapes["input_ids"][0] is shapes["attention_mask"][0]
    assert shapes["input_ids"][1].__name__ == "seq"
    program = torch.export.export(model, args, kwargs=kwargs, dynamic_shapes=shapes, strict=False)
    assert len(program.range_constraints) == 2


def test_dynamic_shapes_errors_name_the_input():
    args = (torch.zeros(2, 3),)
    with pytest.raises(ModelSpecError, match="did you mean 'input_ids'"):
        dynamic_shapes_for(TwoInputs(), args, {}, ["input_id.0=b"])
    with pytest.raises(ModelSpecError, match="no axis 5"):
        dynamic_shapes_for(TwoInputs(), args, {}, ["0.5=b"])
    with pytest.raises(ModelSpecError, match="no input 3"):
        dynamic_shapes_for(TwoInputs(), args, {}, ["3.0=b"])
    assert dynamic_shapes_for(TwoInputs(), args, {}, []) is None
    with pytest.raises(ModelSpecError, match="at least 2"):
        dynamic_shapes_for(TwoInputs(), (torch.zeros(1, 3),), {}, ["0=batch:1..64"])
