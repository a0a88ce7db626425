"""Where each weight of a verification comes from, and the rule that the given weights cannot be dodged.

When weights are given (a state_dict, a safetensors file), every parameter and persistent buffer of the
model must come from them, whatever the IR calls it: a parameter the IR relabels as a non-persistent
buffer or a constant, holds inline, or that the given weights lack, is a ``WeightError``, not something
quietly taken from the model. Only non-persistent buffers and constants, which no state_dict holds, come
from the model; ``fill=True`` (``fill_missing_from_model``) takes missing parameters from it on purpose.
Every weight that does not come from the given ones is listed with where it came from.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch

from torch_ir.errors import WeightError
from torch_ir.ir.graph import Graph, Weight
from torch_ir.runtime.weights import (
    ChainSource,
    MappingSource,
    ModuleSource,
    WeightSource,
    inline_value,
    required_weights,
)

BAKED_MIN_NUMEL = 64
"""Inline constants at least this large are compared with the model's parameters: one that holds a
parameter's value under another name would ignore the given weights."""


class _Model:
    """The model's tensors by name, and which names a state_dict holds (parameters, persistent buffers)."""

    def __init__(self, model: torch.nn.Module):
        self.name = type(model).__name__
        self.buffers = dict(model.named_buffers(remove_duplicate=False))
        self.parameters = dict(model.named_parameters(remove_duplicate=False))
        self.tensors = {**self.buffers, **self.parameters}
        self.persistent = set(model.state_dict(keep_vars=True))

    def kind(self, names: Sequence[str]) -> str:
        return "parameter" if any(n in self.parameters for n in names) else "persistent buffer"

    def groups(self) -> list[list[str]]:
        """Every parameter and persistent buffer, tied names in one group."""
        groups: dict[int, list[str]] = {}
        for name, tensor in self.tensors.items():
            if name in self.persistent:
                groups.setdefault(id(tensor), []).append(name)
        return list(groups.values())


def verification_source(
    graphs: Sequence[Graph],
    given: WeightSource,
    model: torch.nn.Module,
    *,
    fill: bool = False,
    exclude: Collection[str] = (),
) -> tuple[WeightSource, dict[str, str]]:
    """The source the IR binds (``given``, plus what may come from ``model``), and where each weight that
    does not come from ``given`` came from. Raises ``WeightError`` naming every parameter or persistent
    buffer of the model that would not come from ``given``. ``exclude`` names weights that are none of the
    model's (a program's declared state)."""
    m = _Model(model)
    is_model = isinstance(given, ModuleSource) and given.module is model
    extra: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    lacking: dict[str, str] = {}
    inline: list[str] = []
    for weight in _weights(graphs, exclude):
        in_model = [n for n in weight.names if n in m.persistent]
        if weight.data is not None:
            if in_model:
                inline.append(f"@{weight.name} (the model's {m.kind(in_model)} {in_model[0]})")
            continue
        if any(n in given for n in weight.names):
            continue
        declared = weight.kind == "parameter" or (weight.kind == "buffer" and weight.persistent)
        must_be_given = bool(in_model) or declared
        if must_be_given and not fill:
            relabel = "" if declared or not in_model else f" (the model's {m.kind(in_model)}; the IR calls it a "
            if relabel:
                relabel += f"{'non-persistent buffer' if weight.kind == 'buffer' else weight.kind})"
            lacking.update((n, f"{weight.name}{relabel}") for n in (weight.names if in_model else [weight.name]))
            continue
        key = next((n for n in weight.names if n in m.tensors), None)
        if key is None:
            continue  # resolve_weights names it as missing
        extra[key] = m.tensors[key]
        if must_be_given:
            why = f"{m.kind(weight.names)} filled in from the model (fill_missing_from_model)"
        else:
            why = "non-persistent buffer" if key in m.buffers else weight.kind
        sources[weight.name] = f"module {m.name}: {why}"
    if not is_model:
        unused = {name for graph in graphs for name in graph.meta.get("unused_weights", ())}
        for group in m.groups():
            if any(n in given or n in unused or n in extra or n in lacking for n in group):
                continue
            if fill:
                extra[group[0]] = m.tensors[group[0]]
                sources[group[0]] = (
                    f"module {m.name}: {m.kind(group)} filled in from the model (fill_missing_from_model)"
                )
            else:
                lacking[group[0]] = f"{group[0]} (the IR does not read it; eager would run with the model's own)"
    problems: list[str] = []
    if lacking:
        names = list(dict.fromkeys(lacking.values()))
        problems.append(
            f"the given weights ({given.description}) lack {len(names)} parameter(s) or persistent buffer(s) of "
            f"the model: {', '.join(names)}. Verification compares the IR run with these weights, so they must "
            "be given; pass fill_missing_from_model=True (--fill-from-model) to take them from the model instead"
        )
    if inline:
        problems.append(
            f"the IR holds its own value for {len(inline)} parameter(s) or persistent buffer(s): "
            f"{', '.join(inline)}; it would not read the given weights"
        )
    baked = _baked(graphs, m, exclude)
    if baked:
        problems.append(
            f"{len(baked)} inline constant(s) of the IR hold the value of a parameter of the model under "
            f"another name ({', '.join(baked)}); the IR would not read the given weights"
        )
    if problems:
        raise WeightError("; ".join(problems))
    if not extra:
        return given, sources
    return ChainSource(given, MappingSource(extra, f"module {m.name}")), sources


def _weights(graphs: Sequence[Graph], exclude: Collection[str]) -> list[Weight]:
    found: dict[str, Weight] = {}
    for graph in graphs:
        for weight in required_weights(graph):
            if weight.name not in exclude:
                found.setdefault(weight.name, weight)
    return list(found.values())


def _baked(graphs: Sequence[Graph], m: _Model, exclude: Collection[str]) -> list[str]:
    """``@const = fc.weight`` for each large inline constant equal to a (non-constant) model tensor."""
    by_type: dict[tuple[tuple[int, ...], torch.dtype], list[str]] = {}
    for name in m.persistent:
        tensor = m.tensors.get(name)
        if tensor is None or tensor.is_meta or tensor.numel() < BAKED_MIN_NUMEL:
            continue
        by_type.setdefault((tuple(tensor.shape), tensor.dtype), []).append(name)
    found: list[str] = []
    for weight in _weights(graphs, exclude):
        if weight.data is None:
            continue
        try:
            value = inline_value(weight)
        except WeightError:
            continue
        for name in by_type.get((tuple(value.shape), value.dtype), []):
            flat = m.tensors[name].detach().reshape(-1)
            if not bool((flat == flat[0]).all()) and torch.equal(value, flat.reshape(value.shape).to(value.device)):
                found.append(f"@{weight.name} = {name}")
                break
    return found


__all__ = ["BAKED_MIN_NUMEL", "verification_source"]
