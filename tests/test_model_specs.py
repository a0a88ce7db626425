"""Model specs: zoo:NAME, module:factory, file.py:Class, hf:TYPE / hf:PRESET with config overrides."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from torch_ir.errors import ModelSpecError
from torch_ir.frontends.model_specs import PRESETS, ModelBundle, parse_config_overrides, resolve_model

TINY_LLAMA = dict(
    num_hidden_layers=1,
    hidden_size=32,
    intermediate_size=64,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=64,
)

MODEL_FILE = """
import torch

class Net(torch.nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.fc = torch.nn.Linear(width, 2)

    def forward(self, x):
        return self.fc(x)

def with_inputs(width=4):
    return Net(width), (torch.zeros(1, width),)

def broken():
    raise RuntimeError("no weights here")

def not_a_model():
    return 42
"""


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(textwrap.dedent(MODEL_FILE))
    return path


def test_zoo_model_on_meta():
    bundle = resolve_model("zoo:gpt")
    assert bundle.name == "gpt" and bundle.spec == "zoo:gpt"
    assert next(bundle.model.parameters()).device.type == "meta"
    assert bundle.args[0].shape == (1, 32)


def test_unknown_zoo_name_suggests():
    with pytest.raises(ModelSpecError, match=r"did you mean zoo:gpt\?"):
        resolve_model("zoo:gtp")


def test_file_class_and_factory(model_file):
    bundle = resolve_model(f"{model_file}:Net", config_overrides={"width": 8})
    assert bundle.name == "Net" and bundle.model.fc.in_features == 8 and bundle.args == ()
    bundle = resolve_model(f"{model_file}:with_inputs")
    assert isinstance(bundle, ModelBundle) and bundle.args[0].device.type == "meta"


def test_module_factory(model_file, monkeypatch):
    monkeypatch.syspath_prepend(str(model_file.parent))
    monkeypatch.delitem(sys.modules, "my_model", raising=False)
    assert isinstance(resolve_model("my_model:Net").model, torch.nn.Module)


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (":broken", "broken\\(\\) raised RuntimeError: no weights here"),
        (":not_a_model", "returned int"),
        (":Nett", "did you mean Net"),
    ],
)
def test_bad_factories(model_file, suffix, message):
    with pytest.raises(ModelSpecError, match=message):
        resolve_model(f"{model_file}{suffix}")


def test_module_that_does_not_import():
    with pytest.raises(ModelSpecError, match="cannot import 'no_such_pkg.models'"):
        resolve_model("no_such_pkg.models:build")
    with pytest.raises(ModelSpecError, match="no file"):
        resolve_model("missing/model.py:Net")
    with pytest.raises(ModelSpecError, match="expected zoo:NAME"):
        resolve_model("gpt")


def test_file_that_raises_on_import(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("raise ImportError('needs a GPU')\n")
    with pytest.raises(ModelSpecError, match="needs a GPU"):
        resolve_model(f"{path}:Net")


def test_parse_config_overrides():
    parsed = parse_config_overrides(
        "hidden_size=8192,num_hidden_layers=80,rms_norm_eps=1e-5,tie=true,"
        'act=silu,rope_scaling={"type":"linear","factor":2.0},pad=null,ids=[1,2]'
    )
    assert parsed == {
        "hidden_size": 8192,
        "num_hidden_layers": 80,
        "rms_norm_eps": 1e-5,
        "tie": True,
        "act": "silu",
        "rope_scaling": {"type": "linear", "factor": 2.0},
        "pad": None,
        "ids": [1, 2],
    }
    with pytest.raises(ModelSpecError, match="key=value"):
        parse_config_overrides("hidden_size")
    with pytest.raises(ModelSpecError, match="JSON"):
        parse_config_overrides("x=[1,")


def test_zoo_takes_no_overrides():
    with pytest.raises(ModelSpecError, match="no config overrides"):
        resolve_model("zoo:gpt", config_overrides={"layers": 2})


def test_presets_have_published_shapes():
    assert PRESETS["llama-2-70b"]["hidden_size"] == 8192 and PRESETS["llama-2-70b"]["num_key_value_heads"] == 8
    assert PRESETS["llama-2-7b"]["intermediate_size"] == 11008
    assert PRESETS["gpt2-xl"]["n_layer"] == 48 and PRESETS["bert-large"]["hidden_size"] == 1024


# ----------------------------------------------------------------- transformers

transformers = pytest.importorskip("transformers")


def test_hf_model_type_with_overrides():
    bundle = resolve_model("hf:llama", config_overrides=TINY_LLAMA)
    assert type(bundle.model).__name__ == "LlamaForCausalLM"
    assert bundle.args[0].dtype == torch.int64 and bundle.args[0].shape == (1, 128)
    assert bundle.kwargs == {"use_cache": False}
    assert bundle.config.hidden_size == 32 and bundle.name == "llama"


def test_hf_preset_with_overrides_keeps_token_ids_in_vocab():
    bundle = resolve_model("hf:llama-3-8b", config_overrides={**TINY_LLAMA, "vocab_size": 100})
    assert bundle.config.bos_token_id < 100 and bundle.config.eos_token_id < 100
    bundle = resolve_model("hf:gpt2", config_overrides={"n_layer": 1, "n_embd": 16, "n_head": 2, "vocab_size": 50})
    assert bundle.config.eos_token_id == 49


def test_hf_encoder_and_vision_inputs():
    bert = resolve_model(
        "hf:bert-base",
        config_overrides={"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32},
    )
    assert type(bert.model).__name__ == "BertModel" and bert.args[0].shape == (1, 128)
    vit = resolve_model(
        "hf:vit-base",
        config_overrides={"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32},
    )
    assert vit.args[0].shape == (1, 3, 224, 224) and vit.args[0].dtype == torch.float32


def test_unknown_model_type():
    with pytest.raises(ModelSpecError, match=r"no model type 'lama'.*did you mean hf:llama"):
        resolve_model("hf:lama")


def test_unknown_config_key_suggests_the_closest():
    with pytest.raises(ModelSpecError, match=r"'num_hidden_layer'.*did you mean num_hidden_layers"):
        resolve_model("hf:llama", config_overrides={"num_hidden_layer": 2})


def test_hf_without_transformers(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ModelSpecError, match=r"pip install 'torch-ir\[hf\]'"):
        resolve_model("hf:gpt2")
