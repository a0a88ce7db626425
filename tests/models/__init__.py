"""The test-model registry: small models by category, each with its example inputs.

Tests, reports and benchmarks iterate over ``MODELS``. A model file registers its cases with
``register(ModelCase(...))`` when imported; importing this package imports every model file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

Inputs = tuple[tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class ModelCase:
    """One registered test model.

    ``build()`` returns the module (build it under ``torch.device("meta")`` for a weight-free model);
    ``inputs(device)`` gives ``(args, kwargs)``; ``dynamic_shapes`` is passed to torch.export as is.
    ``allow_ops`` names the custom ops (``"ns::op"``) the IR loaded back from its file may run: they are off
    torch-ir's allow-list, and the module that defines them is imported by the worker that runs the IR.
    """

    name: str
    category: str
    build: Callable[[], torch.nn.Module]
    inputs: Callable[[str], Inputs]
    description: str = ""
    dynamic_shapes: Any = None
    rtol: float = 1e-4
    atol: float = 1e-5
    tags: tuple[str, ...] = field(default_factory=tuple)
    allow_ops: tuple[str, ...] = ()

    def build_meta(self) -> torch.nn.Module:
        """The model with every parameter and buffer on the meta device, in eval mode."""
        with torch.device("meta"):
            model = self.build()
        return model.eval()

    def build_real(self, seed: int = 0) -> torch.nn.Module:
        """The model with random weights on the CPU, in eval mode (the same weights for the same seed)."""
        torch.manual_seed(seed)
        return self.build().eval()


MODELS: list[ModelCase] = []

MODEL_FILES = (
    "multi_io",
    "skip_connections",
    "shared_weights",
    "attention",
    "cnn",
    "embedding_mlp",
    "buffers",
    "kwargs_dict",
    "custom_op",
    "dynamic_batch",
    "context_managers",
    "faithful",
    "control_flow",
    "batching",
    "pinned",
)


def register(case: ModelCase) -> ModelCase:
    """Add a case to ``MODELS``; names are unique."""
    if any(m.name == case.name for m in MODELS):
        raise ValueError(f"test model {case.name!r} is registered twice")
    MODELS.append(case)
    return case


def get_model(name: str) -> ModelCase:
    """The registered case called ``name``."""
    for case in MODELS:
        if case.name == name:
            return case
    raise KeyError(f"no test model {name!r}; registered: {', '.join(m.name for m in MODELS)}")


def categories() -> list[str]:
    """Every category, in registration order."""
    return list(dict.fromkeys(m.category for m in MODELS))


for _file in MODEL_FILES:
    importlib.import_module(f"{__name__}.{_file}")
