"""Weights that make every layer matter: no norm, bias or running statistic left as an identity.

A freshly built model is a poor witness: BatchNorm starts with mean 0, variance 1, weight 1 and bias 0,
LayerNorm and RMSNorm with weight 1 and bias 0, linear biases often at 0. Such a layer computes (nearly)
the identity, so an IR that drops it computes the same numbers. The rule here: every floating parameter
and persistent buffer whose elements are all equal (what constant initialization leaves) is redrawn
element by element, a value ``v`` becoming ``v * U(0.5, 1.5)`` (its sign kept: variances and scales stay
positive) and a zero becoming ``U(-0.5, 0.5)``. Randomly initialized tensors (linear and conv weights,
embeddings) are left as they are; non-persistent buffers (rotary frequencies, masks) are computed
constants, not weights, and are left too. Tied weights are redrawn once.
"""

from __future__ import annotations

import torch

LOW, HIGH = 0.5, 1.5
"""The factor range of a non-zero constant; a zero becomes ``U(LOW - 1, HIGH - 1)``."""


def constant_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The floating parameters and persistent buffers whose elements are all equal, by every name (tied
    names included), each storage once per name."""
    persistent = set(model.state_dict(keep_vars=True))
    named = {
        **dict(model.named_parameters(remove_duplicate=False)),
        **dict(model.named_buffers(remove_duplicate=False)),
    }
    found: dict[str, torch.Tensor] = {}
    for name, tensor in named.items():
        if name not in persistent or not tensor.is_floating_point() or tensor.is_meta or tensor.numel() == 0:
            continue
        flat = tensor.detach().reshape(-1)
        if bool((flat == flat[0]).all()):
            found[name] = tensor
    return found


def redrawn_weights(model: torch.nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """New values for ``constant_weights(model)`` under the rule above, by every name (tied names share one
    value); the model is not changed."""
    out: dict[str, torch.Tensor] = {}
    by_storage: dict[tuple[int, tuple[int, ...]], torch.Tensor] = {}
    for name, tensor in constant_weights(model).items():
        key = (tensor.data_ptr(), tuple(tensor.shape))
        value = by_storage.get(key)
        if value is None:
            value = by_storage[key] = _redraw(tensor.detach(), generator)
        out[name] = value
    return out


def informative_weights(model: torch.nn.Module, seed: int = 0) -> list[str]:
    """Redraw, in place, every constant floating parameter and persistent buffer of ``model`` (see the
    module's rule), from a generator seeded with ``seed``; returns the names redrawn."""
    generator = torch.Generator().manual_seed(seed)
    new = redrawn_weights(model, generator)
    targets = {
        **dict(model.named_parameters(remove_duplicate=False)),
        **dict(model.named_buffers(remove_duplicate=False)),
    }
    with torch.no_grad():
        for name, value in new.items():
            targets[name].copy_(value)
    return list(new)


def _redraw(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    value = float(tensor.reshape(-1)[0])
    noise = torch.rand(tuple(tensor.shape), generator=generator, dtype=torch.float64)
    new = (LOW + noise) * value if value != 0.0 else noise + (LOW - 1.0)
    return new.to(device=tensor.device, dtype=tensor.dtype)


__all__ = ["constant_weights", "informative_weights", "redrawn_weights"]
