"""Built-in demo models, so the CLI works with nothing but torch installed.

Each entry builds a model and example inputs on a given device (``meta`` by default: no weight memory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from torch_ir.zoo.gpt import GPT, GPTConfig
from torch_ir.zoo.resnet import ResNet


@dataclass
class ZooEntry:
    """A built-in model: a factory for the module and one for its example inputs."""

    name: str
    description: str
    build: Callable[[], torch.nn.Module]
    example_args: Callable[[str], tuple[Any, ...]]
    example_kwargs: Callable[[str], dict[str, Any]] = field(default=lambda device: {})


ZOO: dict[str, ZooEntry] = {
    "gpt": ZooEntry(
        "gpt",
        "a small GPT-style decoder (4 layers, d=128, tied embeddings)",
        lambda: GPT(GPTConfig()),
        lambda device: (torch.zeros(1, 32, dtype=torch.long, device=device),),
    ),
    "gpt-large": ZooEntry(
        "gpt-large",
        "a GPT-style decoder of GPT-2 large's shape (36 layers, d=1280)",
        lambda: GPT(GPTConfig(layers=36, dim=1280, heads=20, vocab=50257, max_len=1024)),
        lambda device: (torch.zeros(1, 128, dtype=torch.long, device=device),),
    ),
    "resnet": ZooEntry(
        "resnet",
        "a ResNet-18-style CNN (basic blocks [2, 2, 2, 2])",
        lambda: ResNet(),
        lambda device: (torch.zeros(1, 3, 224, 224, device=device),),
    ),
}


def zoo_names() -> list[str]:
    """The names of the built-in models."""
    return list(ZOO)
