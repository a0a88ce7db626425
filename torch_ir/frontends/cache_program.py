"""The module an LLM program is traced from: a transformers causal LM over transformers' own static cache.

It is transformers' static-cache export module (``transformers.integrations.executorch``), generalized to
every kind of cache layer transformers' ``StaticCache`` builds for a model: attention layers (keys, values,
a fill counter), linear-attention and state-space layers (Mamba, gated delta nets, short convolutions: conv
and recurrent states, a token counter), hybrids of both, and layers without a cache. Every tensor a cache
layer holds becomes a non-persistent buffer of the module, so torch.export sees each write as a buffer
mutation and the program declares it as state.

Attention layers are initialized ahead of time as transformers does. Layers that initialize lazily (the
states of linear-attention layers, whose shapes only the model's code knows) are found by tracing one
prompt once, weight-free; their tensors then become zero buffers of the shapes that trace made.

A sliding-window attention layer is held whole (transformers' export module does the same): the layer's
mask applies the window, which ``extract_llm`` checks from what the model's masks do.

A linear-attention layer has no positions: ``prefill`` starts its state afresh (the prompt begins a
sequence), ``decode`` continues it, token by token.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from torch_ir.errors import ExportError

BUFFER_NAMES = {"keys": "key_cache", "values": "value_cache", "cumulative_length": "cumulative_length"}
"""Buffer names of the attention layers' tensors (``key_cache_0`` ...); other tensors keep their attribute
name (``conv_states_1_0``: layer 1, state 0)."""


class CacheProgram(torch.nn.Module):
    """A causal LM called as ``forward(input_ids, cache_position)`` over a static cache held in buffers."""

    def __init__(self, model: torch.nn.Module, batch_size: int, max_cache_len: int, device: torch.device) -> None:
        from transformers import StaticCache
        from transformers.integrations.executorch import get_head_shapes

        super().__init__()
        self.model = model
        config: Any = model.config.get_text_config()  # type: ignore[operator]
        self.static_cache = StaticCache(max_cache_len=max_cache_len, config=config)
        self.static_cache.layers = [_static_layer(layer, max_cache_len) for layer in self.static_cache.layers]
        params = list(model.parameters())
        dtype = params[0].dtype if params else torch.float32
        try:
            num_heads, head_dim = get_head_shapes(config)
        except AttributeError:  # no attention heads (a state-space model): every layer initializes lazily
            pass
        else:
            self.static_cache.early_initialization(batch_size, num_heads, head_dim, dtype, device_of(model))
        self._present_as(device)
        self.batch_size = batch_size
        self.trace_device = device
        self.takes_position_ids = "position_ids" in inspect.signature(model.forward).parameters
        """Whether the program gives the model its positions (``cache_position``): models that derive them
        from the cache's length (OPT's learned positions) would otherwise make them a number read from data."""
        self.slots: list[tuple[int, str, Any, str]] = []
        """(layer index, attribute, dict key or None, buffer name) of every tensor the cache holds."""
        self._adopt_layer_tensors(fresh=False)

    @property
    def lazy_layers(self) -> list[int]:
        """Layers whose tensors the model's code has not made yet (linear-attention states, hybrids)."""
        return [index for index, layer in enumerate(self.static_cache.layers) if _made_lazily(layer)]

    def _present_as(self, device: torch.device) -> None:
        """Layers that know their device make the tensors of forward (positions) on the trace device."""
        for layer in self.static_cache.layers:
            if getattr(layer, "device", None) is not None:
                layer.device = device

    def forward(self, input_ids: Any = None, inputs_embeds: Any = None, cache_position: Any = None) -> Any:
        """Logits of the tokens, the cache advanced past them (transformers' export module's forward)."""
        decode = (input_ids if input_ids is not None else inputs_embeds).shape[1] == 1
        layers = self.static_cache.layers
        for index, attr, key, name in self.slots:
            buffer = getattr(self, name)
            if key is None:
                setattr(layers[index], attr, buffer)
            else:
                getattr(layers[index], attr)[key] = buffer
        for layer in layers:
            for counter in ("cumulative_length", "cumulative_length_linear"):
                if isinstance(getattr(layer, counter, None), torch.Tensor):
                    getattr(layer, counter).copy_(cache_position[0])
            previous = getattr(layer, "has_previous_state", None)
            if isinstance(previous, dict):  # a prompt starts a linear-attention state; a token continues it
                for state in previous:
                    previous[state] = decode
        positions = {}
        if self.takes_position_ids and cache_position is not None:
            tokens = input_ids if input_ids is not None else inputs_embeds
            torch._check(cache_position.shape[0] == tokens.shape[1])  # one length, before any layer runs
            positions["position_ids"] = cache_position.unsqueeze(0).expand(tokens.shape[0], -1)
        outs = self.model(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=None,
            cache=self.static_cache,
            use_cache=True,
            **positions,
        )
        return outs.logits if hasattr(outs, "logits") else outs.last_hidden_state

    def initialize_lazy_layers(self) -> None:
        """Trace one two-token prompt weight-free so the model's code makes the lazy layers' tensors, then
        hold each as a zero buffer of the shape and dtype that trace gave it."""
        from torch_ir.frontends.torch_export import export_program

        lazy = self.lazy_layers
        if not lazy:
            return
        build = device_of(self.model)
        kwargs = {
            "input_ids": torch.zeros(self.batch_size, 2, dtype=torch.long, device=build),
            "cache_position": torch.arange(2, device=build),
        }
        try:
            export_program(self, (), example_kwargs=kwargs, device=self.trace_device, inputs_given=False)
        except ExportError as exc:
            raise ExportError(f"could not make the states of cache layers {lazy} by tracing a prompt: {exc}") from None
        self._adopt_layer_tensors(fresh=True)
        self._present_as(self.trace_device)
        missing = self.lazy_layers
        if missing:
            kinds = sorted({type(self.static_cache.layers[i]).__name__ for i in missing})
            raise ExportError(
                f"cache layers {missing} ({', '.join(kinds)}) made no state when the model ran a prompt: "
                "torch-ir cannot hold their cache as state"
            )

    def _adopt_layer_tensors(self, fresh: bool) -> None:
        """Register every tensor of every cache layer that is not a buffer yet. Those ``fresh`` from a trace,
        or off the model's device (a counter transformers makes on the CPU), become zeros of the same shape
        and dtype on the model's device: every cache tensor starts as zeros."""
        known = {(index, attr, key) for index, attr, key, _ in self.slots}
        device = device_of(self.model)
        for index, layer in enumerate(self.static_cache.layers):
            for attr, key, tensor in _layer_tensors(layer):
                if (index, attr, key) in known:
                    continue
                if fresh or tensor.device != device:
                    tensor = torch.zeros(tuple(tensor.shape), dtype=tensor.dtype, device=device)
                    _put(layer, attr, key, tensor)
                name = f"{BUFFER_NAMES.get(attr, attr)}_{index}" + ("" if key is None else f"_{key}")
                self.register_buffer(name, tensor, persistent=False)
                self.slots.append((index, attr, key, name))
            for flags in ("is_conv_states_initialized", "is_recurrent_states_initialized"):
                states = getattr(layer, flags, None)
                if fresh and isinstance(states, dict):
                    owner = "conv_states" if flags.startswith("is_conv") else "recurrent_states"
                    for state in states:
                        states[state] = getattr(layer, owner).get(state) is not None


def build_cache_module(
    model: torch.nn.Module, batch_size: int, max_cache_len: int, device: torch.device | str = "cpu"
) -> torch.nn.Module:
    """The static-cache module around ``model``, its cache on the model's device (``meta`` for a weight-free
    model), every cache tensor a buffer. Eager calls on a real model compute what transformers does."""
    target = torch.device(device)
    with static_generation(model):
        try:
            wrapper = CacheProgram(model, batch_size, max_cache_len, target)
        except Exception as exc:  # transformers' own cache code, on a config it does not support
            error = ExportError(
                f"transformers cannot build a static cache for {type(model).__name__}: {type(exc).__name__}: {exc}"
            )
            error.cause = "model"
            raise error from exc
        wrapper.initialize_lazy_layers()
    return wrapper.eval()


@contextmanager
def static_generation(model: torch.nn.Module) -> Iterator[None]:
    """Ask for a static cache in the model's generation config for the block, then put it back."""
    generation: Any = model.generation_config
    saved = (generation.use_cache, generation.cache_implementation)
    generation.use_cache, generation.cache_implementation = True, "static"
    try:
        yield
    finally:
        generation.use_cache, generation.cache_implementation = saved


def _static_layer(layer: Any, max_cache_len: int) -> Any:
    """The layer the program holds for ``layer``: a sliding-window attention layer whole (its mask slides),
    a layer without a cache as an empty attention layer (as transformers' export module does)."""
    from transformers.cache_utils import (
        DummyLayer,
        LinearAttentionAndStaticFullAttentionLayer,
        LinearAttentionCacheLayerMixin,
        StaticLayer,
        StaticSlidingWindowLayer,
    )

    if isinstance(layer, StaticSlidingWindowLayer):
        if isinstance(layer, LinearAttentionCacheLayerMixin):
            return LinearAttentionAndStaticFullAttentionLayer(max_cache_len, number_of_states=layer.number_of_states)
        return StaticLayer(max_cache_len)
    if isinstance(layer, DummyLayer):
        return StaticLayer(0)
    return layer


def _layer_tensors(layer: Any) -> list[tuple[str, Any, torch.Tensor]]:
    """Every tensor a cache layer holds: ``(attribute, dict key or None, tensor)``."""
    found: list[tuple[str, Any, torch.Tensor]] = []
    for attr, value in vars(layer).items():
        if isinstance(value, torch.Tensor):
            found.append((attr, None, value))
        elif isinstance(value, dict):
            found.extend((attr, key, item) for key, item in value.items() if isinstance(item, torch.Tensor))
    return found


def _put(layer: Any, attr: str, key: Any, tensor: torch.Tensor) -> None:
    if key is None:
        setattr(layer, attr, tensor)
    else:
        getattr(layer, attr)[key] = tensor


def _made_lazily(layer: Any) -> bool:
    """Whether the model's code has still to make a layer's tensors: an attention part not initialized, or a
    linear-attention layer without any conv or recurrent state yet."""
    if not getattr(layer, "is_initialized", True):
        return True
    conv, recurrent = getattr(layer, "conv_states", None), getattr(layer, "recurrent_states", None)
    if isinstance(conv, dict) and isinstance(recurrent, dict):
        return all(t is None for t in [*conv.values(), *recurrent.values()])
    return False


def device_of(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (``meta`` for a weight-free model), the CPU if it has none."""
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


__all__ = ["BUFFER_NAMES", "CacheProgram", "build_cache_module", "device_of", "static_generation"]
