"""Weight binding: state_dicts, modules, safetensors files (sharded too), aliases, inline data, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.models import get_model
from torch_ir import WeightError, extract_ir
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.weights import as_source, export_weights, resolve_weights


def _case(name: str, pipeline: str = "none"):
    case = get_model(name)
    args, kwargs = case.inputs("meta")
    ir = extract_ir(case.build_meta(), args, example_kwargs=kwargs, pipeline=pipeline)
    return case, ir, case.build_real()


@pytest.fixture(scope="module")
def mlp():
    return _case("residual_mlp")


def _check(ir, weights, case, real) -> None:
    args, kwargs = case.inputs("cpu")
    torch.testing.assert_close(Interpreter(ir, weights)(*args, **kwargs), real(*args, **kwargs))


def test_missing_weight_lists_the_key(mlp) -> None:
    _, ir, real = mlp
    state = real.state_dict()
    dropped = sorted(state)[:2]
    for key in dropped:
        del state[key]
    with pytest.raises(WeightError, match="missing \\(2\\)") as info:
        Interpreter(ir, state)
    assert all(key in str(info.value) for key in dropped)


def test_unexpected_weight_lists_the_key(mlp) -> None:
    _, ir, real = mlp
    state = {**real.state_dict(), "extra.weight": torch.zeros(2), "other": torch.zeros(1)}
    with pytest.raises(WeightError, match="unexpected \\(2\\): extra.weight, other"):
        Interpreter(ir, state)
    Interpreter(ir, state, strict=False)  # allowed when not strict


def test_wrong_shape_and_dtype_are_listed_together(mlp) -> None:
    _, ir, real = mlp
    state = real.state_dict()
    first, second = sorted(state)[:2]
    state[first] = torch.zeros(*state[first].shape, 3)
    state[second] = state[second].double()
    with pytest.raises(WeightError) as info:
        Interpreter(ir, state)
    text = str(info.value)
    assert "wrong shape (1)" in text and first in text
    assert "wrong dtype (1)" in text and f"{second}: expected float32, got float64" in text


def test_safetensors_file_is_read_lazily(mlp, tmp_path: Path) -> None:
    case, ir, real = mlp
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in real.state_dict().items()}, str(path))
    _check(ir, str(path), case, real)
    _check(ir, path, case, real)


def test_sharded_safetensors_index(mlp, tmp_path: Path) -> None:
    case, ir, real = mlp
    state = real.state_dict()
    keys = sorted(state)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    weight_map = {}
    for file, names in shards.items():
        save_file({k: state[k].contiguous() for k in names}, str(tmp_path / file))
        weight_map.update({k: file for k in names})
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    _check(ir, str(index), case, real)
    _check(ir, str(tmp_path), case, real)  # a folder finds the index


def test_corrupt_safetensors_file(mlp, tmp_path: Path) -> None:
    _, ir, _ = mlp
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(WeightError, match="broken.safetensors"):
        Interpreter(ir, str(path))
    with pytest.raises(WeightError, match="does not exist"):
        Interpreter(ir, str(tmp_path / "nope.safetensors"))


def test_tied_weight_found_under_its_alias() -> None:
    case, ir, real = _case("tied_embedding_lm", pipeline="default")
    tied = [w for w in ir.weights.values() if w.aliases]
    assert tied
    state = real.state_dict()
    for weight in tied:  # keep only one spelling of the tied storage, under an alias
        state.pop(weight.name, None)
        alias = weight.aliases[0]
        state.setdefault(alias, real.state_dict()[alias])
    args, kwargs = case.inputs("cpu")
    torch.testing.assert_close(Interpreter(ir, state)(*args, **kwargs), real(*args, **kwargs))


def test_non_persistent_buffers_come_from_the_module() -> None:
    case, ir, real = _case("buffers")
    assert "inv_freq" not in real.state_dict()
    with pytest.raises(WeightError, match="inv_freq.*non-persistent"):
        Interpreter(ir, real.state_dict())
    _check(ir, real, case, real)


def test_inline_constant_data_is_used() -> None:
    ir = extract_ir(_ConstModel(), (torch.randn(3),), pipeline="none")
    constants = [w for w in ir.weights.values() if w.data is not None]
    assert constants
    x = torch.randn(3)
    torch.testing.assert_close(Interpreter(ir, {})(x), _ConstModel()(x))


class _ConstModel(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tensor([1.0, 2.0, 3.0])


def test_export_weights_writes_what_the_ir_reads(tmp_path: Path) -> None:
    case, ir, real = _case("tied_embedding_lm", pipeline="default")
    path = tmp_path / "out" / "weights.safetensors"
    names = export_weights(ir, real, path)
    written = load_file(str(path))
    assert sorted(written) == sorted(names) == sorted(ir.weights)
    args, kwargs = case.inputs("cpu")
    torch.testing.assert_close(Interpreter(ir, str(path))(*args, **kwargs), real(*args, **kwargs))
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_resolve_weights_and_sources(mlp) -> None:
    _, ir, real = mlp
    tensors = resolve_weights(ir, real)
    assert set(tensors) == set(ir.weights)
    with pytest.raises(WeightError, match="cannot read weights from a int"):
        as_source(3)
