"""Model specs: one resolver for the CLI and the Python API.

- ``zoo:NAME``: a built-in model (``torch_ir.zoo``);
- ``package.module:factory`` or ``path/to/file.py:ClassOrFactory``: a user factory (called with the config
  overrides as keyword arguments) returning an ``nn.Module``, a ``ModelBundle``, or ``(model, args[, kwargs])``;
- ``hf:MODEL_TYPE`` or ``hf:PRESET`` (``hf:llama-2-7b``): a transformers model built from a config, on
  meta, with no hub access (``AutoConfig.for_model`` + ``from_config``); ``config_overrides`` change it.

``parse_config_overrides("hidden_size=8192,num_hidden_layers=80")`` reads the CLI's ``--config``.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from torch_ir.errors import ModelSpecError


@dataclass
class ModelBundle:
    """A model ready to extract: the module, example inputs, dynamic shapes, a display name, and the range
    ``[low, high)`` of integer inputs where the model's config says it (``input_ids``: the vocabulary)."""

    model: torch.nn.Module
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    dynamic_shapes: Any = None
    name: str = "model"
    spec: str = ""
    config: Any = None
    input_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)


PRESETS: dict[str, dict[str, Any]] = {
    "llama-2-7b": dict(
        model_type="llama",
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
    ),
    "llama-2-13b": dict(
        model_type="llama",
        hidden_size=5120,
        intermediate_size=13824,
        num_hidden_layers=40,
        num_attention_heads=40,
        num_key_value_heads=40,
        vocab_size=32000,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
    ),
    "llama-2-70b": dict(
        model_type="llama",
        hidden_size=8192,
        intermediate_size=28672,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        vocab_size=32000,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
    ),
    "llama-3-8b": dict(
        model_type="llama",
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        bos_token_id=128000,
        eos_token_id=128001,
    ),
    "llama-3-70b": dict(
        model_type="llama",
        hidden_size=8192,
        intermediate_size=28672,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        vocab_size=128256,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        bos_token_id=128000,
        eos_token_id=128001,
    ),
    "llama-3.1-405b": dict(
        model_type="llama",
        hidden_size=16384,
        intermediate_size=53248,
        num_hidden_layers=126,
        num_attention_heads=128,
        num_key_value_heads=8,
        vocab_size=128256,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        bos_token_id=128000,
        eos_token_id=128001,
    ),
    "mistral-7b": dict(
        model_type="mistral",
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=32000,
        max_position_embeddings=32768,
        rms_norm_eps=1e-5,
        sliding_window=4096,
        rope_theta=10000.0,
    ),
    "gpt2": dict(model_type="gpt2", n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=1024),
    "gpt2-medium": dict(model_type="gpt2", n_embd=1024, n_layer=24, n_head=16, vocab_size=50257, n_positions=1024),
    "gpt2-large": dict(model_type="gpt2", n_embd=1280, n_layer=36, n_head=20, vocab_size=50257, n_positions=1024),
    "gpt2-xl": dict(model_type="gpt2", n_embd=1600, n_layer=48, n_head=25, vocab_size=50257, n_positions=1024),
    "bert-base": dict(
        model_type="bert",
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        vocab_size=30522,
        max_position_embeddings=512,
    ),
    "bert-large": dict(
        model_type="bert",
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        vocab_size=30522,
        max_position_embeddings=512,
    ),
    "vit-base": dict(
        model_type="vit",
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        image_size=224,
        patch_size=16,
        num_channels=3,
    ),
    "vit-large": dict(
        model_type="vit",
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        image_size=224,
        patch_size=16,
        num_channels=3,
    ),
    "t5-small": dict(
        model_type="t5",
        d_model=512,
        d_ff=2048,
        d_kv=64,
        num_layers=6,
        num_decoder_layers=6,
        num_heads=8,
        vocab_size=32128,
        feed_forward_proj="relu",
        tie_word_embeddings=True,
    ),
}
"""Well-known shapes (published configs, weights never needed): ``hf:NAME`` builds them on meta."""

ENCODER_TYPES = frozenset(
    {
        "bert",
        "roberta",
        "distilbert",
        "albert",
        "electra",
        "xlm-roberta",
        "camembert",
        "mpnet",
        "deberta",
        "deberta-v2",
        "modernbert",
    }
)
"""Model types built as their bare encoder (``AutoModel``) rather than a causal LM head."""

SEQUENCE_LENGTH = 128
"""Example sequence length of token inputs (capped by the model's position limit)."""

_TOKEN_ID_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id", "sep_token_id")


def resolve_model(spec: str, device: str = "meta", config_overrides: Mapping[str, Any] | None = None) -> ModelBundle:
    """Build the model a spec names, on ``device`` (meta: no weight memory), in eval mode.

    ``config_overrides`` change an ``hf:`` config, or are passed to a factory as keyword arguments.
    """
    overrides = dict(config_overrides or {})
    if spec.startswith("zoo:"):
        if overrides:
            raise ModelSpecError(f"model spec {spec!r}: zoo models take no config overrides (got {list(overrides)})")
        bundle = _resolve_zoo(spec[4:], device)
    elif spec.startswith("hf:"):
        bundle = _resolve_hf(spec[3:], device, overrides)
    elif ":" in spec:
        bundle = _resolve_factory(spec, device, overrides)
    else:
        raise ModelSpecError(
            f"model spec {spec!r}: expected zoo:NAME, hf:MODEL_TYPE, package.module:factory or "
            "path/to/file.py:ClassOrFactory"
        )
    bundle.spec = spec
    return bundle


def parse_config_overrides(text: str) -> dict[str, Any]:
    """Parse ``key=value,key=value`` (values int, float, bool, null, JSON, or else a string).

    Commas inside JSON brackets or quotes do not split: ``rope_scaling={"type":"linear","factor":2.0}``.
    """
    result: dict[str, Any] = {}
    for item in _split_top_level(text):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ModelSpecError(f"config override {item!r}: expected key=value (e.g. hidden_size=8192)")
        result[key] = parse_value(raw.strip())
        _check_count(key, result[key], item)
    return result


_COUNT_PREFIXES = ("num_", "n_")
_SIZE_SUFFIXES = ("_size", "_dim", "_heads", "_layers", "_embeddings", "_positions", "_len", "_length")


def _check_count(key: str, value: Any, item: str) -> None:
    """A count or size (``num_hidden_layers``, ``hidden_size``, ``n_head``) must not be negative, and a size
    not 0: transformers builds such a config without a word and the model is nonsense."""
    if not isinstance(value, int) or isinstance(value, bool):
        return
    is_count = key.startswith(_COUNT_PREFIXES) or key.endswith(("_layers", "_heads"))
    is_size = key.endswith(_SIZE_SUFFIXES) and not is_count
    if value < 0 and (is_count or is_size):
        raise ModelSpecError(f"config override {item!r}: {key} is a count or size; it cannot be negative")
    if value == 0 and is_size:
        raise ModelSpecError(f"config override {item!r}: {key} is a size; give it a value of at least 1")


def parse_value(raw: str) -> Any:
    """``80`` -> 80, ``1e-5`` -> 1e-05, ``true`` -> True, ``null`` -> None, ``[1,2]`` -> [1, 2], else the text."""
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    if raw[:1] in '[{"':
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ModelSpecError(f"config value {raw!r}: not valid JSON ({exc})") from None
    return raw


def _split_top_level(text: str) -> list[str]:
    items, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "[{":
            depth += 1
        elif not quoted and char in "]}":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return items


# ---------------------------------------------------------------------- zoo


def _resolve_zoo(name: str, device: str) -> ModelBundle:
    from torch_ir.zoo import ZOO

    entry = ZOO.get(name)
    if entry is None:
        hint = _did_you_mean(name, ZOO, "zoo:")
        raise ModelSpecError(f"unknown zoo model {name!r}{hint}; available: {', '.join(ZOO)}")
    with torch.device(device):
        model = entry.build()
    return ModelBundle(model.eval(), entry.example_args(device), entry.example_kwargs(device), None, name)


# ----------------------------------------------------------------- factories


def _resolve_factory(spec: str, device: str, overrides: dict[str, Any]) -> ModelBundle:
    location, _, attr = spec.rpartition(":")
    if not attr.isidentifier():
        raise ModelSpecError(f"model spec {spec!r}: {attr!r} is not a Python name")
    module = _load_file(spec, location) if _is_path(location) else _import(spec, location)
    factory = getattr(module, attr, None)
    if factory is None:
        names = [n for n in vars(module) if not n.startswith("_")]
        raise ModelSpecError(f"model spec {spec!r}: {location!r} has no attribute {attr!r}{_did_you_mean(attr, names)}")
    if not callable(factory):
        raise ModelSpecError(f"model spec {spec!r}: {attr!r} is a {type(factory).__name__}, not a class or function")
    try:
        with torch.device(device):
            made = factory(**overrides)
    except Exception as exc:
        raise ModelSpecError(f"model spec {spec!r}: {attr}() raised {type(exc).__name__}: {exc}") from exc
    if isinstance(made, ModelBundle):
        made.model.eval()
        return made
    if isinstance(made, tuple) and made and isinstance(made[0], torch.nn.Module) and len(made) in (2, 3):
        model, args = made[0], made[1]
        kwargs = dict(made[2]) if len(made) == 3 else {}
        args = args if isinstance(args, tuple) else (tuple(args) if isinstance(args, list) else (args,))
        return ModelBundle(model.eval(), args, kwargs, None, attr)
    if not isinstance(made, torch.nn.Module):
        raise ModelSpecError(
            f"model spec {spec!r}: {attr}() returned {type(made).__name__}; expected an nn.Module, a ModelBundle "
            "or (model, args[, kwargs])"
        )
    return ModelBundle(made.eval(), (), {}, None, type(made).__name__ if isinstance(factory, type) else attr)


def _is_path(location: str) -> bool:
    return location.endswith(".py") or "/" in location or os.sep in location


def _import(spec: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise ModelSpecError(
            f"model spec {spec!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc}); "
            "check the module is on sys.path, or name a file: path/to/file.py:Factory"
        ) from exc


def _load_file(spec: str, location: str) -> Any:
    path = Path(location).expanduser().resolve()
    if not path.is_file():
        raise ModelSpecError(f"model spec {spec!r}: no file {location!r}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    module_name = f"torch_ir_user_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    file_spec = importlib.util.spec_from_file_location(module_name, path)
    if file_spec is None or file_spec.loader is None:
        raise ModelSpecError(f"model spec {spec!r}: {location!r} cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        file_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise ModelSpecError(f"model spec {spec!r}: running {location!r} raised {type(exc).__name__}: {exc}") from exc
    return module


# ---------------------------------------------------------------- transformers


def _resolve_hf(name: str, device: str, overrides: dict[str, Any]) -> ModelBundle:
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import transformers
    except ImportError:
        raise ModelSpecError(
            f"model spec 'hf:{name}' needs transformers: pip install 'torch-ir[hf]' (or pip install transformers)"
        ) from None
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    preset = PRESETS.get(name)
    if preset is not None:
        kwargs = dict(preset)
        model_type = kwargs.pop("model_type")
    else:
        model_type, kwargs = name, {}
        if model_type not in CONFIG_MAPPING_NAMES:
            known = sorted(CONFIG_MAPPING_NAMES) + sorted(PRESETS)
            raise ModelSpecError(
                f"model spec 'hf:{name}': transformers {transformers.__version__} has no model type {name!r}"
                f"{_did_you_mean(name, known, 'hf:')}; presets: {', '.join(PRESETS)}"
            )
    default = AutoConfig.for_model(model_type)
    for key in overrides:
        if not hasattr(default, key):
            known = [*default.to_dict(), *getattr(default, "attribute_map", {})]
            raise ModelSpecError(
                f"config override {key!r}: {type(default).__name__} has no such key{_did_you_mean(key, known)}"
            )
    kwargs.update(overrides)
    kwargs.update(_token_ids_inside_vocab(default, kwargs))
    try:
        config = AutoConfig.for_model(model_type, **kwargs)
    except Exception as exc:
        raise ModelSpecError(f"model spec 'hf:{name}': config rejected: {type(exc).__name__}: {exc}") from exc
    auto_class, inputs = _hf_task(model_type, config, device)
    try:
        with torch.device(device):
            model = getattr(transformers, auto_class).from_config(config)
    except Exception as exc:
        raise ModelSpecError(
            f"model spec 'hf:{name}': {auto_class}.from_config raised {type(exc).__name__}: {exc}"
        ) from exc
    args, kwargs_in = inputs
    return ModelBundle(model.eval(), args, kwargs_in, None, name, config=config, input_ranges=hf_input_ranges(config))


HF_ID_RANGES: dict[str, tuple[str, ...]] = {
    "input_ids": ("vocab_size",),
    "decoder_input_ids": ("vocab_size",),
    "token_type_ids": ("type_vocab_size",),
    "position_ids": ("max_position_embeddings", "n_positions"),
}
"""The config keys that bound each integer input of a transformers model: ids are rows of an embedding."""


def hf_input_ranges(config: Any) -> dict[str, tuple[int, int]]:
    """``{"input_ids": (0, vocab_size), ...}`` for the integer inputs whose bound ``config`` gives."""
    ranges: dict[str, tuple[int, int]] = {}
    for name, keys in HF_ID_RANGES.items():
        for key in keys:
            value = getattr(config, key, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                ranges[name] = (0, value)
                break
    return ranges


def _token_ids_inside_vocab(default: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Special token ids outside an overridden vocabulary make model construction fail: bring them inside."""
    vocab = kwargs.get("vocab_size", getattr(default, "vocab_size", None))
    if not isinstance(vocab, int) or vocab <= 0:
        return {}
    fixed: dict[str, Any] = {}
    for key in _TOKEN_ID_KEYS:
        value = kwargs.get(key, getattr(default, key, None))
        if isinstance(value, int) and value >= vocab:
            fixed[key] = vocab - 1
        elif isinstance(value, list) and any(isinstance(v, int) and v >= vocab for v in value):
            fixed[key] = [min(v, vocab - 1) for v in value]
    return fixed


def _hf_task(model_type: str, config: Any, device: str) -> tuple[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    """The Auto class to build, and example ``(args, kwargs)`` for it."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if hasattr(config, "image_size") and hasattr(config, "num_channels"):
        size = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
        pixels = torch.randn(1, config.num_channels, size, size, device=device)
        return "AutoModel", ((pixels,), {})
    limits = [getattr(config, k, None) for k in ("max_position_embeddings", "n_positions")]
    limit = next((n for n in limits if isinstance(n, int)), SEQUENCE_LENGTH)
    length = min(SEQUENCE_LENGTH, limit)
    if device == "meta":
        ids = torch.zeros(1, length, dtype=torch.long, device=device)
    else:  # token ids all over the vocabulary (a generator of its own: the model's random weights stay as seeded)
        vocab = getattr(config, "vocab_size", None)
        high = vocab if isinstance(vocab, int) and vocab > 0 else 1
        ids = torch.randint(0, high, (1, length), generator=torch.Generator().manual_seed(0)).to(device)
    if getattr(config, "is_encoder_decoder", False):
        return "AutoModelForSeq2SeqLM", ((ids,), {"decoder_input_ids": ids.clone(), "use_cache": False})
    if model_type in ENCODER_TYPES or model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "AutoModel", ((ids,), {})
    return "AutoModelForCausalLM", ((ids,), {"use_cache": False})


def preset_names() -> list[str]:
    """The ``hf:`` presets."""
    return list(PRESETS)


def _did_you_mean(name: str, known: Any, prefix: str = "") -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


__all__ = [
    "HF_ID_RANGES",
    "PRESETS",
    "ModelBundle",
    "hf_input_ranges",
    "parse_config_overrides",
    "parse_value",
    "preset_names",
    "resolve_model",
]
