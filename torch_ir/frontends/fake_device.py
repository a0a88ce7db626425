"""Tracing as the target device, weight-free: parameters on ``meta`` are presented to torch.export as fake
tensors of the target device, so ``x.device.type`` checks, tensors built from Python data in ``forward``
and kernels without a meta implementation behave as they do on that device, while no weight is allocated.

torch.export (non-strict) fakes every parameter and buffer with its own fake mode. ``traced_as`` makes it
fake a ``meta`` tensor as a tensor of the target device instead (one fake tensor per tensor object, so tied
weights stay tied), and gives it inputs on the target device. The user's model is never touched.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils import _pytree as pytree

from torch_ir.errors import ExportError

_PATCH_LOCK = threading.Lock()


def check_device(device: str | torch.device) -> torch.device:
    """The trace device, or an ``ExportError`` when this torch cannot present tensors on it."""
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ExportError(f"trace device {device!r} is not a device torch knows ({exc}); use 'cpu' or 'meta'") from None
    if target.type in ("cpu", "meta"):
        return target
    try:
        torch.empty(0, device=target)
    except (RuntimeError, AssertionError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"trace device {device!r} is not available in this torch build ({reason}); "
            "trace as 'cpu' (the default) or 'meta'"
        ) from None
    return target


def fake_capable() -> bool:
    """Whether this torch has the hook that ``traced_as`` uses (torch.export's parameter fakification)."""
    modules = _tracing_modules()
    return bool(modules) and all(callable(getattr(m, _HOOK, None)) for m in modules)


_HOOK = "_fakify_params_buffers"
"""The function torch.export (and ``run_decompositions``) calls to fake a module's parameters and buffers."""


def _tracing_modules() -> list[Any]:
    try:
        import torch.export._trace as trace
        import torch.export.exported_program as exported_program
    except ImportError:
        return []
    return [trace, exported_program]


def as_device_inputs(value: Any, device: torch.device) -> Any:
    """Inputs with every ``meta`` (or fake) tensor replaced by a zero tensor of the same type on ``device``.

    Inputs are small next to weights (token ids, an image), so they are real: torch.export fakes them
    itself, with dynamic dimensions where asked. Their values never matter to the trace.
    """

    def convert(leaf: Any) -> Any:
        if isinstance(leaf, torch.Tensor) and (leaf.device.type == "meta" or _is_fake(leaf)):
            return torch.zeros(tuple(leaf.shape), dtype=leaf.dtype, device=device)
        return leaf

    return pytree.tree_map(convert, value)


def _is_fake(tensor: torch.Tensor) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(tensor, FakeTensor)


@contextlib.contextmanager
def traced_as(device: torch.device) -> Iterator[None]:
    """Within this block, torch.export and ``run_decompositions`` fake ``meta`` (and foreign fake)
    parameters and buffers as ``device``."""
    modules = _tracing_modules()

    def fakify_params_buffers(fake_mode: Any, module: torch.nn.Module) -> dict[str, Any]:
        named = {
            **dict(module.named_parameters(remove_duplicate=False)),
            **dict(module.named_buffers(remove_duplicate=False)),
        }
        memo: dict[int, Any] = {}
        out: dict[str, Any] = {}
        for name, tensor in named.items():
            fake = memo.get(id(tensor))
            if fake is None:
                fake = memo[id(tensor)] = _fake_of(fake_mode, tensor, device)
            out[name] = fake
        return out

    with _PATCH_LOCK:
        originals: list[Callable[..., Any]] = [getattr(m, _HOOK) for m in modules]
        for module in modules:
            setattr(module, _HOOK, fakify_params_buffers)
        try:
            yield
        finally:
            for module, original in zip(modules, originals):
                setattr(module, _HOOK, original)


def _fake_of(fake_mode: Any, tensor: torch.Tensor, device: torch.device) -> Any:
    """The fake of a parameter or buffer, remembered for the tensor itself: code that reaches the same tensor
    another way (a cache object holding it as an attribute) gets the same fake."""
    if not (tensor.device.type == "meta" or _is_fake(tensor)):
        return fake_mode.from_tensor(tensor, static_shapes=True)
    meta = tensor
    if _is_fake(tensor):
        meta = torch.empty_strided(tuple(tensor.shape), tuple(tensor.stride()), dtype=tensor.dtype, device="meta")
    converter = fake_mode.fake_tensor_converter
    fake = converter.from_meta_and_device(fake_mode, meta, device)
    converter.set_tensor_memo(tensor, fake)
    return fake


__all__ = ["as_device_inputs", "check_device", "fake_capable", "traced_as"]
