"""Extraction as users call it: a frontend's capture, then the default pipeline (or the one given).

``extract_ir`` and ``extract_llm`` sit above the frontends and the passes, so neither imports the other:
the frontends only trace (``torch_ir.frontends``), the pass manager only transforms (``torch_ir.passes``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch_ir.errors import ExportError
from torch_ir.ir.module import Module
from torch_ir.passes.manager import run_pipeline


def extract_ir(
    model: Any,
    example_inputs: Sequence[Any] | Any = (),
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    dynamic_shapes: Any = None,
    decompose: str | Mapping[Any, Callable[..., Any]] | None = None,
    pipeline: Any = "default",
    name: str | None = None,
    device: Any = "cpu",
    functions: bool = False,
) -> Module:
    """Extract the IR of ``model`` called as ``model(*example_inputs, **example_kwargs)``.

    ``device`` is the device the trace presents the model and inputs as (``"cpu"`` by default, so device
    checks, constants made in forward and CPU-only kernels behave as on the CPU; ``"meta"`` traces on meta
    as is). ``decompose`` is None (the ATen IR torch.export gives), ``"core_aten"``, or a decomposition
    table. ``pipeline`` is a pipeline text, a pipeline file, a ``PassManager``, ``"default"`` or
    ``"none"``/None. The model is never changed and no weight is materialized. ``ir.stages`` holds
    per-stage figures. A graph that runs only for one value of a number read from data warns
    (``TorchIRWarning``); one that can never run is an ``ExportError``, as is a failed export (its message
    has torch's reason, the line of the model's code that raised it, and ``ExportError.cause``).

    ``functions=True`` traces each distinct repeated block (the children of a module list) once and the
    model with one ``func.call`` per block (``torch_ir.frontends.functions``); ``"default"`` is then the
    ``functions`` pipeline (``outline-repeated-blocks`` before ``cse``). A group of blocks that cannot be
    proven alike is traced block by block, with a ``TorchIRWarning``.
    """
    if functions:
        from torch_ir.frontends.functions import capture_functions

        if decompose is not None:
            raise ExportError("functions=True traces blocks as torch.export gives them: drop decompose=")
        module = capture_functions(
            model,
            example_inputs,
            example_kwargs=example_kwargs,
            dynamic_shapes=dynamic_shapes,
            name=name,
            device=device,
        )
        return run_pipeline(module, "functions" if pipeline == "default" else pipeline)
    from torch_ir.frontends.torch_export import capture

    module = capture(
        model,
        example_inputs,
        example_kwargs=example_kwargs,
        dynamic_shapes=dynamic_shapes,
        decompose=decompose,
        name=name,
        device=device,
    )
    return run_pipeline(module, pipeline)


def extract_llm(
    model: Any,
    *,
    max_cache_len: int,
    batch_size: int = 1,
    max_prefill_len: int | None = None,
    cache: str = "static",
    pipeline: Any = "default",
    device: Any = "cpu",
    name: str | None = None,
    functions: bool = False,
) -> Module:
    """The ``prefill`` + ``decode`` program of a transformers causal LM, weight-free
    (``torch_ir.frontends.llm.capture_llm``), through ``pipeline``.

    With ``functions=True`` the decoder layer is traced once per entry and called per layer, its KV-cache
    slice passed in and returned; ``"default"`` is then the ``functions`` pipeline.

    ``model`` is a transformers causal LM (on ``meta`` for a weight-free extraction). The KV cache holds
    ``max_cache_len`` positions for ``batch_size`` sequences; ``prefill`` takes prompts of 2 to
    ``max_prefill_len`` tokens (default ``max_cache_len``). Raises ``ExportError`` for a model that is not a
    causal LM, a cache kind other than ``static``, lengths out of range, sliding-window layers whose window
    (shorter than the cache) no mask of the model applies, or entries the trace pins to one size. Hybrid
    caches (conv and recurrent states of linear-attention and state-space layers) are declared state.
    """
    from torch_ir.frontends.llm import capture_llm

    module = capture_llm(
        model,
        max_cache_len=max_cache_len,
        batch_size=batch_size,
        max_prefill_len=max_prefill_len,
        cache=cache,
        device=device,
        name=name,
        functions=functions,
    )
    return run_pipeline(module, "functions" if functions and pipeline == "default" else pipeline)


__all__ = ["extract_ir", "extract_llm"]
