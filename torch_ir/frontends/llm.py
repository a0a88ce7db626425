"""LLM deployment programs: a ``prefill`` and a ``decode`` entry over one set of weights and one KV cache.

``extract_llm`` wraps a transformers causal LM in transformers' own static-cache export module
(``transformers.integrations.executorch``), so the cache layout and its update are transformers' code, not
torch-ir's. Both entries are traced weight-free as the target device: ``prefill`` takes a prompt of a
symbolic length ``seq`` (2 up to ``max_prefill_len``; torch.export specializes a length of 1, which is what
``decode`` is for), ``decode`` one token. Every write to the cache is a state update, and the cache tensors
are the program's declared state, zeros before the first call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from torch_ir.errors import ExportError
from torch_ir.frontends.fake_device import check_device
from torch_ir.frontends.functions import trace_with_blocks
from torch_ir.frontends.torch_export import convert_program, export_program
from torch_ir.ir.graph import Graph
from torch_ir.ir.module import IR, StateSpec
from torch_ir.ir.run_record import StageReport, paused_gc
from torch_ir.ir.types import TensorType

CACHE_KINDS = ("static",)
"""KV-cache layouts ``extract_llm`` builds: ``static`` (one preallocated buffer per layer, transformers'
``StaticCache``)."""

WRAPPER_PREFIX = "model."
"""The name of the causal LM inside transformers' export module; stripped so weights keep the LM's names."""


def capture_llm(
    model: torch.nn.Module,
    *,
    max_cache_len: int,
    batch_size: int = 1,
    max_prefill_len: int | None = None,
    cache: str = "static",
    device: str | torch.device = "cpu",
    name: str | None = None,
    functions: bool = False,
) -> IR:
    """The ``prefill`` + ``decode`` program of a transformers causal LM, weight-free, as traced (no passes
    run: ``torch_ir.extract_llm`` runs the default pipeline on it).

    With ``functions=True``, each entry is traced with its decoder layers as calls of one function
    traced once (``torch_ir.frontends.functions``): a layer's KV-cache slice is passed into the body and
    returned, and the entry's state update writes the call's result. Without, every layer is traced inline.

    ``model`` is a transformers causal LM (on ``meta`` for a weight-free extraction). The KV cache holds
    ``max_cache_len`` positions for ``batch_size`` sequences; ``prefill`` takes prompts of 2 to
    ``max_prefill_len`` tokens (default ``max_cache_len``). Raises ``ExportError`` for a model that is not a
    causal LM, a cache kind other than ``static``, lengths out of range, or a sliding-window cache whose
    window is shorter than ``max_cache_len`` (a static cache cannot slide).
    """
    config = _check_model(model)
    max_prefill_len = _check_lengths(config, max_cache_len, batch_size, max_prefill_len)
    if cache not in CACHE_KINDS:
        raise ExportError(f"--kv-cache {cache!r} is not supported; cache kinds: {', '.join(CACHE_KINDS)}")
    target = check_device(device)
    stages = StageReport()
    with _static_generation(model):
        wrapper = build_cache_module(model, batch_size, max_cache_len, target)
        seq = torch.export.Dim("seq", min=2, max=max_prefill_len)
        build_device = _device_of(model)
        ids = torch.zeros(batch_size, 2, dtype=torch.long, device=build_device)
        positions = torch.arange(2, device=build_device)
        calls = {
            "prefill": (
                {"input_ids": ids, "cache_position": positions},
                {"input_ids": {1: seq}, "cache_position": {0: seq}},
            ),
            "decode": ({"input_ids": ids[:, :1], "cache_position": positions[:1]}, None),
        }
        entries: dict[str, Graph] = {}
        bodies: list[tuple[str, Graph]] = []
        for entry, (kwargs, dynamic) in calls.items():
            entry_stages = StageReport()
            if functions:
                traced = trace_with_blocks(
                    wrapper, (), example_kwargs=kwargs, dynamic_shapes=dynamic, stages=entry_stages, device=target
                )
                with entry_stages.measure("convert"), paused_gc():
                    graph, made = traced.convert([*calls, *(n for n, _ in bodies)], WRAPPER_PREFIX)
                del traced
            else:  # every layer inline; torch functionalizes the cache writes (run_decompositions)
                program = export_program(
                    wrapper, (), example_kwargs=kwargs, dynamic_shapes=dynamic, stages=entry_stages, device=target
                )
                with entry_stages.measure("convert"), paused_gc():
                    graph = convert_program(program, wrapper, dynamic_shapes=dynamic)
                made = []
                del program
            for g in (graph, *(body for _, body in made)):
                _strip_wrapper_prefix(g)
            graph.meta["model"] = name or type(model).__name__
            graph.meta["entry"] = entry
            for stage in entry_stages.stages:
                stage.name = f"{entry}: {stage.name}"
                stages.stages.append(stage)
            entries[entry] = graph
            bodies.extend(made)
    state = _declared_state(entries, wrapper)
    order = {name: index for index, name in enumerate(state)}
    for graph in entries.values():  # each entry writes the cache in the declared order, whatever the route
        graph.set_state_updates(sorted(graph.state_updates, key=lambda u: order.get(u.target, len(order))))
    module = IR.program(entries, state, stages)
    for function_name, body in bodies:
        module.add_function(function_name, body, public=False)
    return module


def build_cache_module(
    model: torch.nn.Module, batch_size: int, max_cache_len: int, device: torch.device | str = "cpu"
) -> torch.nn.Module:
    """transformers' static-cache export module around ``model``, its cache on the model's device (``meta``
    for a weight-free model), reading its cache through its registered buffers so that torch.export sees
    every write as a buffer mutation. Eager calls on a real model compute exactly what transformers does."""
    from transformers.integrations.executorch import TorchExportableModuleWithStaticCache

    class StaticCacheProgram(TorchExportableModuleWithStaticCache):
        """The cache layers hold their tensors as plain attributes, which torch.export (non-strict) would
        lift as constants: each call points them at the module's own buffers first."""

        def forward(self, input_ids: Any = None, inputs_embeds: Any = None, cache_position: Any = None) -> Any:
            layer: Any
            for i, layer in enumerate(self.static_cache.layers):
                layer.keys = getattr(self, f"key_cache_{i}")
                layer.values = getattr(self, f"value_cache_{i}")
                layer.cumulative_length = getattr(self, f"cumulative_length_{i}")
            return super().forward(input_ids=input_ids, inputs_embeds=inputs_embeds, cache_position=cache_position)

    with _static_generation(model):
        lm: Any = model
        wrapper = StaticCacheProgram(lm, batch_size=batch_size, max_cache_len=max_cache_len, device=_device_of(model))
    for layer in wrapper.static_cache.layers:
        if hasattr(layer, "device"):
            layer.device = torch.device(device)  # tensors the layer makes in forward: on the trace device
    return wrapper.eval()


def _check_model(model: torch.nn.Module) -> Any:
    config = getattr(model, "config", None)
    generation = getattr(model, "generation_config", None)
    is_lm = callable(getattr(model, "can_generate", None)) and model.can_generate()  # type: ignore[operator]
    if config is None or generation is None or not is_lm:
        raise ExportError(
            f"{type(model).__name__} is not a transformers causal LM (it needs a config, a generation config "
            "and can_generate()): prefill/decode programs are built for AutoModelForCausalLM models"
        )
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _check_lengths(config: Any, max_cache_len: int, batch_size: int, max_prefill_len: int | None) -> int:
    if not isinstance(max_cache_len, int) or max_cache_len < 2:
        raise ExportError(f"max_cache_len must be an integer of at least 2, got {max_cache_len!r}")
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and max_cache_len > positions:
        raise ExportError(
            f"max_cache_len {max_cache_len} is beyond the model's {positions} positions (max_position_embeddings)"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ExportError(f"batch_size must be a positive integer, got {batch_size!r}")
    prefill = max_cache_len if max_prefill_len is None else max_prefill_len
    if not isinstance(prefill, int) or not 2 <= prefill <= max_cache_len:
        raise ExportError(f"max_prefill_len must be between 2 and max_cache_len ({max_cache_len}), got {prefill!r}")
    window = getattr(config, "sliding_window", None)
    if isinstance(window, int) and getattr(config, "layer_types", None) and max_cache_len > window:
        raise ExportError(
            f"the model has sliding-window layers (window {window}) and a static cache cannot slide: "
            f"use max_cache_len <= {window}, or a sliding-window cache (not supported yet)"
        )
    return prefill


@contextmanager
def _static_generation(model: torch.nn.Module) -> Iterator[None]:
    """Ask for a static cache in the model's generation config for the block, then put it back."""
    generation: Any = model.generation_config
    saved = (generation.use_cache, generation.cache_implementation)
    generation.use_cache, generation.cache_implementation = True, "static"
    try:
        yield
    finally:
        generation.use_cache, generation.cache_implementation = saved


def _device_of(model: torch.nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def _strip_wrapper_prefix(graph: Graph) -> None:
    """Weights and module paths of the wrapped LM get back the names of the LM itself (``model.layers.0...``),
    in the graph, its init graph, a function's ``module_path`` and the ``module_path`` of its calls."""
    if isinstance(graph.meta.get("module_path"), str):
        graph.meta["module_path"] = _unwrapped(graph.meta["module_path"])
    for g in (graph, graph.init):
        if g is None:
            continue
        for node in g.nodes:
            stack = node.meta.get("module_stack")
            if stack:
                node.meta["module_stack"] = [[_unwrapped(str(path)), cls] for path, cls in stack]
            if isinstance(node.meta.get("module_path"), str):
                node.meta["module_path"] = _unwrapped(node.meta["module_path"])
        for weight in list(g.weights.values()):
            if weight.name.startswith(WRAPPER_PREFIX):
                g.rename_weight(weight, weight.name[len(WRAPPER_PREFIX) :])
            weight.aliases = tuple(a.removeprefix(WRAPPER_PREFIX) for a in weight.aliases)


def _unwrapped(path: str) -> str:
    return path.removeprefix(WRAPPER_PREFIX) if path != "model" else ""


def _declared_state(entries: dict[str, Graph], wrapper: torch.nn.Module) -> dict[str, StateSpec]:
    """Every buffer an entry writes (the KV cache and its fill counters), declared once, zeros at first, in
    the order the cache module registers them (whatever order the entries write them in)."""
    found: dict[str, StateSpec] = {}
    for graph in entries.values():
        for update in graph.state_updates:
            if update.kind == "buffer" and update.target not in found:
                type_ = graph.weight(update.target).type
                if not isinstance(type_, TensorType):
                    raise ExportError(f"state @{update.target} has no tensor type")
                found[update.target] = StateSpec(update.target, type_)
    order = {_unwrapped(name): index for index, (name, _) in enumerate(wrapper.named_buffers())}
    return {name: found[name] for name in sorted(found, key=lambda n: (order.get(n, len(order)), n))}


__all__ = ["CACHE_KINDS", "build_cache_module", "capture_llm"]
