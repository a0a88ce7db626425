"""LLM deployment programs: a ``prefill`` and a ``decode`` entry over one set of weights and one cache.

``extract_llm`` wraps a transformers causal LM in a static-cache module modelled on transformers' own
export module (``frontends/cache_program.py``), so the cache layout and its update are transformers' code,
not torch-ir's. Both entries are traced weight-free as the target device: ``prefill`` takes a prompt of a
symbolic length ``seq`` (2 up to ``max_prefill_len``; torch.export specializes a length of 1, which is what
``decode`` is for), ``decode`` one token. Every write to the cache is a state update, and the cache tensors
(keys and values of attention layers, conv and recurrent states of linear-attention and state-space layers)
are the program's declared state, zeros before the first call.

Two checks keep a program that cannot serve generation from being accepted: a sliding-window layer must
have its window applied by the masks the model builds (the static cache holds every position), and no size
the entries take may be pinned by the trace to one value (``pinned_sizes``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from torch_ir.errors import ExportError, TorchIRWarning
from torch_ir.frontends.cache_program import build_cache_module, device_of, static_generation
from torch_ir.frontends.fake_device import check_device
from torch_ir.frontends.functions import trace_with_blocks
from torch_ir.frontends.pinned_sizes import pinned_sizes
from torch_ir.frontends.torch_export import convert_program, export_program, symbol_names
from torch_ir.ir.graph import Graph
from torch_ir.ir.module import IR, StateSpec
from torch_ir.ir.run_record import StageReport, paused_gc
from torch_ir.ir.types import TensorType

CACHE_KINDS = ("static",)
"""KV-cache layouts ``extract_llm`` builds: ``static`` (one preallocated buffer per layer, transformers'
``StaticCache``)."""

WRAPPER_PREFIX = "model."
"""The name of the causal LM inside the cache module; stripped so weights keep the LM's names."""

WINDOW_MASKS = {"sliding": "sliding_window_overlay", "chunked": "chunked_overlay"}
"""The functions of ``transformers.masking_utils`` that build a window into a mask, by window kind."""


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
    causal LM, a cache kind other than ``static``, lengths out of range, sliding-window layers whose window
    (shorter than the cache) no mask of the model applies, or entries the trace pins to one size.
    """
    config = _check_model(model)
    max_prefill_len = _check_lengths(config, max_cache_len, batch_size, max_prefill_len)
    if cache not in CACHE_KINDS:
        raise ExportError(f"--kv-cache {cache!r} is not supported; cache kinds: {', '.join(CACHE_KINDS)}")
    target = check_device(device)
    stages = StageReport()
    windows = sliding_windows(config, max_cache_len)
    pinned: list[str] = []
    with static_generation(model):
        wrapper = build_cache_module(model, batch_size, max_cache_len, target)
        entries: dict[str, Graph] = {}
        bodies: list[tuple[str, Graph]] = []
        for entry in ("prefill", "decode"):
            entry_stages = StageReport()
            applied: set[tuple[str, int]] = set()
            made: list[tuple[str, Graph]] = []
            if functions:  # decoder layers as calls of one function each, traced once
                kwargs, dynamic = entry_call(entry, batch_size, device_of(wrapper.model), (2, max_prefill_len))
                with _window_masks(applied):
                    traced = trace_with_blocks(
                        wrapper, (), example_kwargs=kwargs, dynamic_shapes=dynamic, stages=entry_stages, device=target
                    )
                _check_windows(windows, applied, max_cache_len, entry)
                with entry_stages.measure("convert"), paused_gc():
                    graph, made = traced.convert(["prefill", "decode", *(n for n, _ in bodies)], WRAPPER_PREFIX)
                del traced
            else:  # every layer inline; torch functionalizes the cache writes (run_decompositions)
                with _window_masks(applied):
                    program, dynamic = _export_entry(entry, wrapper, batch_size, max_prefill_len, entry_stages, target)
                _check_windows(windows, applied, max_cache_len, entry)
                names = symbol_names(program, wrapper, dynamic)
                pinned += [f"{entry} runs only when {p.describe()}" for p in pinned_sizes(program, names)]
                with entry_stages.measure("convert"), paused_gc():
                    graph = convert_program(program, wrapper, dynamic_shapes=dynamic)
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
    _check_pinned(pinned, type(model).__name__)
    state = _declared_state(entries, wrapper)
    order = {name: index for index, name in enumerate(state)}
    for graph in entries.values():  # each entry writes the cache in the declared order, whatever the route
        graph.set_state_updates(sorted(graph.state_updates, key=lambda u: order.get(u.target, len(order))))
    module = IR.program(entries, state, stages)
    for function_name, body in bodies:
        module.add_function(function_name, body, public=False)
    return module


def entry_call(
    entry: str, batch_size: int, device: Any, lengths: tuple[int, int], example: int = 0, auto: bool = False
) -> tuple[Any, Any]:
    """Example inputs and dynamic shapes of an entry: ``prefill`` a prompt of ``seq`` tokens in ``lengths``
    (the example ``example`` tokens long, the shortest by default; ``auto`` lets torch narrow the range),
    ``decode`` one token."""
    low, high = lengths
    size = (example or low) if entry == "prefill" else 1
    ids = torch.zeros(batch_size, size, dtype=torch.long, device=device)
    kwargs = {"input_ids": ids, "cache_position": torch.arange(size, device=device)}
    if entry == "decode":
        return kwargs, None
    seq: Any = torch.export.Dim.AUTO(min=low, max=high) if auto else torch.export.Dim("seq", min=low, max=high)
    return kwargs, {"input_ids": {1: seq}, "cache_position": {0: seq}}


PROBE_PROMPT = 8
"""The prompt length the prefill of a model that restricts its prompt lengths is traced with, to find them."""


def _export_entry(
    entry: str, wrapper: Any, batch_size: int, max_prefill_len: int, stages: StageReport, device: Any
) -> tuple[Any, Any]:
    """One entry's program and its dynamic shapes.

    A model whose code puts conditions on the prompt length that torch cannot prove for every length (a
    scan in chunks of 64 pads to ``(seq + pad) % 64 == 0``) gets them as runtime assertions of the graph.
    One whose code takes a branch on the prompt length (pad when shorter than a convolution) takes the
    lengths of that branch: prefill's range shrinks, with a warning. One whose code fixes the length (a
    Python loop over the prompt) is refused, saying so.
    """
    build = device_of(wrapper.model)

    def trace(call: tuple[Any, Any], deferred: bool) -> Any:
        kwargs, dynamic = call
        return export_program(
            wrapper,
            (),
            example_kwargs=kwargs,
            dynamic_shapes=dynamic,
            stages=stages,
            device=device,
            inputs_given=False,
            deferred_asserts=deferred,
        )

    call = entry_call(entry, batch_size, build, (2, max_prefill_len))
    for deferred in (False, True):
        try:
            return trace(call, deferred), call[1]
        except ExportError as exc:
            if exc.cause != "dynamic_shapes" or entry != "prefill":
                raise
            failure = exc
    example = min(PROBE_PROMPT, max_prefill_len)
    program = trace(entry_call(entry, batch_size, build, (2, max_prefill_len), example, auto=True), True)
    low, high = _length_range(program, "input_ids")
    if low >= high:
        error = ExportError(
            f"prefill cannot take prompts of a variable length: the model's code fixes the prompt length while "
            f"it is traced (a limitation of the model's code, not of the inputs torch-ir built).\n{failure}"
        )
        error.cause, error.torch_log = "model", failure.torch_log
        raise error from None
    if (low, high) != (2, max_prefill_len):
        warnings.warn(
            f"prefill takes prompts of {low} to {high} tokens, not 2 to {max_prefill_len}: the model's code "
            "branches on the prompt length, and the program keeps the branch of those lengths",
            TorchIRWarning,
            stacklevel=3,
        )
    same = _length_symbol(program, "input_ids") == _length_symbol(program, "cache_position")
    seq = torch.export.Dim("seq", min=low, max=high)
    positions = seq if same else torch.export.Dim("positions", min=2, max=max_prefill_len)
    return program, {"input_ids": {1: seq}, "cache_position": {0: positions}}


def _length_symbol(program: Any, name: str) -> Any:
    """The size of the prompt's axis of input ``name`` in ``program`` (an int or a symbolic size)."""
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == name:
            size = node.meta["val"].shape[-1]
            return size if isinstance(size, int) else size.node.expr
    return None


def _length_range(program: Any, name: str) -> tuple[int, int]:
    """The lengths input ``name`` of ``program`` takes (one when torch specialized it)."""
    size = _length_symbol(program, name)
    if size is None or isinstance(size, int):
        return (size or 0), (size or 0)
    bounds = program.range_constraints[size]
    return int(bounds.lower), int(bounds.upper)


def sliding_windows(config: Any, max_cache_len: int) -> dict[tuple[str, int], list[int]]:
    """The layers that slide within a cache of ``max_cache_len`` positions, by ``(kind, window)``.

    Read from the per-layer types transformers' cache is built from: a layer slides when its type takes a
    window (``sliding_attention``, ``chunked_attention``, hybrids of them) and the window is a positive size
    shorter than the cache. A window of 0 or None, or ``use_sliding_window=False`` (all layers
    ``full_attention``), is no window; a window at least the cache's length never slides.
    """
    try:
        from transformers.cache_utils import get_layer_types_and_kwargs
    except ImportError:
        return {}
    text_config = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    layer_types, layer_kwargs = get_layer_types_and_kwargs(text_config)
    sliding: dict[tuple[str, int], list[int]] = {}
    for index, (layer_type, kwargs) in enumerate(zip(layer_types, layer_kwargs)):
        window = kwargs.get("sliding_window")
        if not isinstance(window, int) or isinstance(window, bool) or not 0 < window < max_cache_len:
            continue
        kind = "chunked" if "chunk" in str(layer_type) else "sliding"
        sliding.setdefault((kind, window), []).append(index)
    return sliding


@contextmanager
def _window_masks(applied: set[tuple[str, int]]) -> Iterator[None]:
    """Record, into ``applied``, the windows the model's mask functions build while the block traces."""
    try:
        from transformers import masking_utils
    except ImportError:
        yield
        return
    originals = {kind: getattr(masking_utils, fn, None) for kind, fn in WINDOW_MASKS.items()}

    def recording(kind: str, original: Any) -> Any:
        def build(window: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(window, int):
                applied.add((kind, window))
            return original(window, *args, **kwargs)

        return build

    for kind, original in originals.items():
        if original is not None:
            setattr(masking_utils, WINDOW_MASKS[kind], recording(kind, original))
    try:
        yield
    finally:
        for kind, original in originals.items():
            if original is not None:
                setattr(masking_utils, WINDOW_MASKS[kind], original)


def _check_windows(
    windows: dict[tuple[str, int], list[int]], applied: set[tuple[str, int]], max_cache_len: int, entry: str
) -> None:
    """Every layer that slides must have had its window built into a mask of ``entry``: the static cache
    keeps all ``max_cache_len`` positions, so only the mask keeps such a layer from attending past it."""
    missing = {key: layers for key, layers in windows.items() if key not in applied}
    if not missing:
        return
    text = "; ".join(
        f"layer{'s' if len(layers) > 1 else ''} {', '.join(map(str, layers))}: {kind} window {window}"
        for (kind, window), layers in missing.items()
    )
    shortest = min(window for _, window in missing)
    raise ExportError(
        f"the model has layers that attend over a window shorter than the cache ({text}), and its masks do not "
        f"apply that window in {entry} (no {'/'.join(WINDOW_MASKS.values())} of transformers' masking_utils was "
        f"built with it): a static cache of {max_cache_len} positions would let them see past it. Use "
        f"max_cache_len <= {shortest}"
    )


def _check_pinned(pinned: list[str], model_name: str) -> None:
    """An entry whose trace pins a size to one value cannot serve generation: refuse the program."""
    if not pinned:
        return
    error = ExportError(
        f"the program of {model_name} cannot run as prefill/decode: "
        + "; ".join(pinned)
        + ". The model's code fixes those sizes while it is traced (an error in the model or transformers): "
        "no prompt length and position it is called with may differ"
    )
    error.cause = "model"
    raise error


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
    return prefill


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
    """Every buffer an entry writes (attention caches and their fill counters, conv and recurrent states),
    declared once, zeros at first, in the order the cache module registers them (attention caches first),
    whatever order the entries write them in."""
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


__all__ = ["CACHE_KINDS", "build_cache_module", "capture_llm", "sliding_windows"]
