"""The inputs of each trial of a verification: informative, seeded, and checked against the IR.

Trial 0 runs on the given inputs (or, for inputs that only give shapes and dtypes, such as the command
line's, values drawn with ``seed``); trial ``t`` draws new values with seed ``seed + t``, and where the IR
has symbolic dimensions (``s0``, ``batch``) it also draws new sizes for them inside their ranges, so an IR
that is right only for the test input's batch size or length shows it.

Each graph input is drawn from, in this order: the range the caller gives for it (``input_ranges``, the
command line's ``ids:1x32:int64:0..50257``, a transformers config's vocabulary); for an integer input, the
rows of the model's own ``nn.Embedding`` that reads it (``embedding_rows``: found by running the model
once, so an IR cannot hide it); the bound of the ops of the IR that index with it
(``torch_ir.analysis.input_ranges``); the range of the given values with 0 and 1 (integers), or a normal
distribution of their magnitude (floats); ``random_input``'s defaults. ``check`` refuses inputs that do not
fit the IR (count, dtype, shape, and given ids past what the IR indexes) with an ``InputError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.utils import _pytree as pytree

from torch_ir.analysis.input_ranges import IndexBound, input_index_bounds
from torch_ir.errors import InputError, InterpreterError
from torch_ir.frontends.inputs import is_mask, random_input
from torch_ir.ir.graph import Graph
from torch_ir.ir.types import TensorType

MAX_GROWTH = 4
"""How much larger than the given size a symbolic dimension may be drawn when it cannot be drawn smaller."""


class TrialInputs:
    """The inputs of trial ``t`` (``inputs(t)``) of a verification of ``graph`` on ``(args, kwargs)``.

    ``flatten`` picks the graph inputs out of a call (``Interpreter.flatten_inputs``); ``example=True``
    says the given values are placeholders (shapes and dtypes only) to draw in trial 0 too.
    """

    def __init__(
        self,
        graph: Graph,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        flatten: Callable[[Sequence[Any], dict[str, Any]], list[Any]],
        *,
        seed: int = 0,
        ranges: Mapping[str, tuple[float, float]] | None = None,
        example: bool = False,
        model: torch.nn.Module | None = None,
        functions: Mapping[str, Graph] | None = None,
    ):
        self.graph = graph
        self.args, self.kwargs = tuple(args), dict(kwargs)
        self.flatten = flatten
        self.seed = seed
        self.example = example
        self.bounds: dict[str, IndexBound] = input_index_bounds(graph, functions)
        self.given = flatten(self.args, self.kwargs)
        self.explicit = set(ranges or {})
        unbounded = {
            v.name: t
            for v, t in zip(graph.inputs, self.given)
            if isinstance(t, torch.Tensor) and _integer(t) and v.name not in self.explicit
        }
        self.rows = embedding_rows(model, self.args, self.kwargs, unbounded) if model is not None and unbounded else {}
        self._position = {id(v): i for i, v in enumerate(self.given) if isinstance(v, torch.Tensor)}
        self.ranges: dict[str, tuple[float, float] | None] = {}
        """The range each integer input is drawn from (and float inputs a caller gives one), None: defaults."""
        self.spread: dict[str, tuple[float, float, float]] = {}
        """Given inputs without a known range: their smallest and largest value (the end of the range, for
        integers), and their root mean square (floats)."""
        self.notes: list[str] = []
        known = dict(ranges or {})
        unknown = sorted(set(known) - {v.name for v in graph.inputs})
        if unknown:
            names = ", ".join(v.name for v in graph.inputs)
            raise InputError(f"input_ranges names no input of the IR: {', '.join(unknown)}; its inputs: {names}")
        for value, tensor in zip(graph.inputs, self.given):
            if isinstance(tensor, torch.Tensor):
                self.ranges[value.name] = self._range(value.name, tensor, known.get(value.name))

    def _range(self, name: str, tensor: torch.Tensor, given: tuple[float, float] | None) -> tuple[float, float] | None:
        if given is not None:
            return (float(given[0]), float(given[1]))
        floating = tensor.is_floating_point() or tensor.is_complex()
        if name in self.rows:
            return (0.0, float(self.rows[name]))
        if not floating and tensor.dtype != torch.bool:
            bound = self.bounds.get(name)
            if bound is not None:
                return (0.0, float(bound.high))
        if is_mask(name, _dtype(tensor)) or tensor.is_complex():
            return None
        if self.example or tensor.numel() == 0:
            if not floating:
                self.notes.append(
                    f"input {name}: no op of the IR bounds it and no range was given, so it is drawn in 0..1; "
                    f"give its range if it takes more (--input {name}:SHAPE:DTYPE:LOW..HIGH)"
                )
            return None
        low, high = float(tensor.min()), float(tensor.max())
        if not (math.isfinite(low) and math.isfinite(high)):
            return None
        if floating:
            rms = float(tensor.double().square().mean().sqrt())
            self.spread[name] = (low, high, rms if rms > 0 else 1.0)
            return None
        self.spread[name] = (low, high + 1, 0.0)
        self.notes.append(
            f"input {name}: no op of the IR bounds it, so it is drawn in {int(min(low, 0))}.."
            f"{int(max(high, 1))} (its given values, 0 and 1); give its range if that is not what it takes "
            f"(input_ranges={{'{name}': (LOW, HIGH)}}, --input {name}:SHAPE:DTYPE:LOW..HIGH)"
        )
        return (min(low, 0.0), max(high + 1, 2.0))

    def inputs(
        self, trial: int, *, vary_shapes: bool = True, like_given: bool = False
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` of trial ``trial``: the given ones for trial 0 (unless they are only an example),
        else values drawn with seed ``seed + trial``: new sizes for symbolic dimensions with ``vary_shapes``;
        given float inputs drawn from a normal distribution of their root mean square (both signs), or with
        ``like_given`` uniformly between their smallest and largest value (for a model that needs that domain)."""
        if trial == 0 and not self.example:
            return self.args, dict(self.kwargs)
        generator = torch.Generator().manual_seed(self.seed + trial)
        sizes = self._sizes(generator) if trial > 0 and vary_shapes else {}
        drawn: dict[int, torch.Tensor] = {}
        for index, (value, tensor) in enumerate(zip(self.graph.inputs, self.given)):
            if isinstance(tensor, torch.Tensor):
                drawn[index] = self._draw(value.name, value.type, tensor, sizes, generator, like_given)

        def replace(leaf: Any) -> Any:
            index = self._position.get(id(leaf)) if isinstance(leaf, torch.Tensor) else None
            return leaf if index is None else drawn[index]

        args, kwargs = pytree.tree_map(replace, (self.args, self.kwargs))
        return tuple(args), dict(kwargs)

    def _draw(
        self,
        name: str,
        type_: Any,
        tensor: torch.Tensor,
        sizes: dict[str, int],
        generator: torch.Generator,
        like_given: bool,
    ) -> torch.Tensor:
        shape = list(tensor.shape)
        if isinstance(type_, TensorType) and sizes:
            shape = [sizes.get(d, s) if isinstance(d, str) else s for d, s in zip(type_.shape, shape)]
        value_range = self.ranges.get(name)
        spread = self.spread.get(name)
        if spread is not None and like_given and spread[1] > spread[0]:
            value_range = spread[:2]
        elif spread is not None and value_range is None:  # a given float input: both signs, its magnitude
            values = random_input(tuple(shape), "float32", generator, name=name) * spread[2]
            return values.to(device=tensor.device, dtype=tensor.dtype)
        return random_input(
            tuple(shape), _dtype(tensor), generator, value_range=value_range, name=name, device=tensor.device
        )

    def _sizes(self, generator: torch.Generator) -> dict[str, int]:
        """A new size for each symbolic dimension of the inputs, inside its range, different from the given
        one where the range allows; none when an input dimension is an expression (``2*s0``)."""
        given: dict[str, int] = {}
        for value, tensor in zip(self.graph.inputs, self.given):
            if not isinstance(value.type, TensorType) or not isinstance(tensor, torch.Tensor):
                continue
            for dim, size in zip(value.type.shape, tensor.shape):
                if isinstance(dim, str):
                    if not dim.isidentifier():
                        return {}
                    given.setdefault(dim, int(size))
        sizes: dict[str, int] = {}
        for symbol, size in given.items():
            bounds = self.graph.symbols.get(symbol)
            low = max(2, bounds.min if bounds is not None and bounds.min is not None else 2)
            high = bounds.max if bounds is not None and bounds.max is not None else size * MAX_GROWTH
            choices = [n for n in range(low, min(high, size) + 1) if n != size]
            if not choices:
                choices = [n for n in range(size + 1, min(high, size * MAX_GROWTH) + 1)]
            sizes[symbol] = choices[int(torch.randint(len(choices), (), generator=generator))] if choices else size
        return sizes

    def check(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], check_types: Callable[[list[Any]], Any], trial: int
    ) -> None:
        """Raise ``InputError`` when ``(args, kwargs)`` do not fit the IR: the graph inputs cannot be picked
        out of them, ``check_types`` (``Interpreter.check_inputs``) refuses them, or an integer input whose
        values the caller chose (given, or drawn in a range the caller gave) holds values outside what an op
        of the IR indexes with it. Values drawn in the model's own range are not refused: an IR that cannot
        take them fails the verification."""
        try:
            flat = self.flatten(args, dict(kwargs))
            check_types(flat)
        except InterpreterError as exc:
            raise InputError(f"the test inputs do not fit the IR: {_strip(exc)}") from None
        for value, tensor in zip(self.graph.inputs, flat):
            bound = self.bounds.get(value.name)
            chosen = value.name in self.explicit or (trial == 0 and not self.example)
            if bound is None or not chosen or not isinstance(tensor, torch.Tensor) or tensor.numel() == 0:
                continue
            low, high = int(tensor.min()), int(tensor.max())
            if low < bound.low or high >= bound.high:
                raise InputError(
                    f"input {value.name} holds values {low}..{high}, outside {bound.low}..{bound.high - 1}: "
                    f"{bound.describe()}; give ids inside that range (--input {value.name}:SHAPE:DTYPE:0..{bound.high})"
                )

    def describe(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """``ids int64[1, 32] in 0..1024, x float32[2, 4]``: what a trial ran on."""
        parts = []
        flat = self.flatten(args, dict(kwargs))
        for value, tensor in zip(self.graph.inputs, flat):
            if not isinstance(tensor, torch.Tensor):
                continue
            text = f"{value.name} {_dtype(tensor)}{list(tensor.shape)}"
            if not (tensor.is_floating_point() or tensor.is_complex()) and tensor.numel():
                text += f" in {int(tensor.min())}..{int(tensor.max())}"
            parts.append(text)
        return ", ".join(parts)


def embedding_rows(
    model: torch.nn.Module, args: tuple[Any, ...], kwargs: Mapping[str, Any], inputs: Mapping[str, torch.Tensor]
) -> dict[str, int]:
    """For each of ``inputs`` (integer tensors of the call, by name), the rows of the smallest
    ``nn.Embedding`` of ``model`` that reads it (or a view of it), found by running the model once on a
    copy of the call with hooks on its embeddings; {} when the model fails on it."""
    embeddings = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    if not embeddings:
        return {}
    copies: dict[int, torch.Tensor] = {}

    def copy(leaf: Any) -> Any:
        if not isinstance(leaf, torch.Tensor):
            return leaf
        clone = leaf.clone()
        copies[id(leaf)] = clone
        return clone

    call_args, call_kwargs = pytree.tree_map(copy, (tuple(args), dict(kwargs)))
    storages = {copies[id(t)].untyped_storage().data_ptr(): name for name, t in inputs.items() if id(t) in copies}
    rows: dict[str, int] = {}

    def seen(module: torch.nn.Module, operands: tuple[Any, ...]) -> None:
        ids = operands[0] if operands else None
        if isinstance(ids, torch.Tensor):
            name = storages.get(ids.untyped_storage().data_ptr())
            if name is not None:
                rows[name] = min(rows.get(name, module.num_embeddings), module.num_embeddings)

    handles = [m.register_forward_pre_hook(seen) for m in embeddings]
    try:
        with torch.no_grad():
            model(*call_args, **call_kwargs)
    except Exception:  # the trials report a model that fails on its inputs
        return {}
    finally:
        for handle in handles:
            handle.remove()
    return rows


def _integer(tensor: torch.Tensor) -> bool:
    return not (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool)


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _strip(exc: Exception) -> str:
    return str(exc).removeprefix("the call's inputs do not match the IR: ")


__all__ = ["MAX_GROWTH", "TrialInputs", "embedding_rows"]
