"""Model specs: one resolver for the CLI and the Python API (``zoo:NAME``, ``package.module:factory``)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import torch

from torch_ir.errors import ModelSpecError


@dataclass
class ModelBundle:
    """A model ready to extract: the module, example inputs, dynamic shapes and a display name."""

    model: torch.nn.Module
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    dynamic_shapes: Any = None
    name: str = "model"


def resolve_model(spec: str, device: str = "meta") -> ModelBundle:
    """Build the model a spec names, on ``device`` (meta: no weight memory), in eval mode."""
    if spec.startswith("zoo:"):
        return _resolve_zoo(spec[4:], device)
    if ":" in spec:
        return _resolve_factory(spec, device)
    raise ModelSpecError(f"model spec {spec!r}: expected zoo:NAME or package.module:factory")


def _resolve_zoo(name: str, device: str) -> ModelBundle:
    from torch_ir.zoo import ZOO

    entry = ZOO.get(name)
    if entry is None:
        import difflib

        close = difflib.get_close_matches(name, list(ZOO), n=1)
        hint = f" (did you mean zoo:{close[0]}?)" if close else ""
        raise ModelSpecError(f"unknown zoo model {name!r}{hint}; available: {', '.join(ZOO)}")
    with torch.device(device):
        model = entry.build()
    return ModelBundle(model.eval(), entry.example_args(device), entry.example_kwargs(device), None, name)


def _resolve_factory(spec: str, device: str) -> ModelBundle:
    module_name, _, attr = spec.rpartition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelSpecError(f"model spec {spec!r}: cannot import {module_name!r}: {exc}") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise ModelSpecError(f"model spec {spec!r}: module {module_name!r} has no attribute {attr!r}")
    try:
        with torch.device(device):
            made = factory()
    except Exception as exc:
        raise ModelSpecError(f"model spec {spec!r}: the factory raised {type(exc).__name__}: {exc}") from exc
    if isinstance(made, ModelBundle):
        return made
    if not isinstance(made, torch.nn.Module):
        raise ModelSpecError(f"model spec {spec!r}: the factory returned {type(made).__name__}, not an nn.Module")
    return ModelBundle(made.eval(), (), {}, None, type(made).__name__)
