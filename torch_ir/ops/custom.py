"""``define_op``: a custom op in one call: its ``torch.library`` definition, its fake kernel and its
registration with torch-ir, safe to run twice.

::

    @define_op("mylib::rms_norm")
    def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

defines ``mylib::rms_norm`` with torch (``torch.library.custom_op``: the function is its kernel, its type hints
its schema), gives it a fake kernel (by default: a result like its first tensor operand) so that
torch.export, ``create_op`` and ``annotate-shapes`` can type it, and registers it with torch-ir's op
registry (pure unless told otherwise, so ``eliminate-dead-nodes``, ``cse`` and ``hoist-weights`` treat it as
they treat ``aten`` ops). In the IR the op is spelled ``mylib.rms_norm.default``.

Running the definition again (a plugin imported twice, a module reloaded) returns the op defined the first
time: torch cannot define an op twice in a process, and the registration is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch_ir.errors import TorchIRError
from torch_ir.ops.cost import CostFunction, CostModel
from torch_ir.ops.names import parse_op_name
from torch_ir.ops.registry import register_op


def define_op(
    name: str,
    kernel: Callable[..., Any] | None = None,
    *,
    fake: Callable[..., Any] | None = None,
    schema: str | None = None,
    mutates_args: Sequence[str] = (),
    pure: bool | None = True,
    cost: CostFunction | CostModel | None = None,
    commutative: bool | None = None,
    canonical: str | None = None,
) -> Any:
    """Define the custom op ``name`` (``"mylib::op"``) with ``kernel`` and register it with torch-ir; return
    the op (``torch.ops.mylib.op``), callable like the kernel. Without ``kernel``, a decorator.

    - ``kernel``: what the op computes (eager, on real tensors); its type hints give the schema unless
      ``schema`` (``"(Tensor x, float eps) -> Tensor"``) is given;
    - ``fake``: the fake kernel (shapes and dtypes only); by default the result is like the first tensor
      operand (``torch.empty_like``), right for elementwise ops and norms;
    - ``mutates_args``: the operands the kernel writes (none by default; such an op is not pure);
    - ``pure``, ``cost``, ``commutative``, ``canonical``: the traits torch-ir records (``register_op``).
    """
    if kernel is None:
        return lambda fn: define_op(
            name,
            fn,
            fake=fake,
            schema=schema,
            mutates_args=mutates_args,
            pure=pure,
            cost=cost,
            commutative=commutative,
            canonical=canonical,
        )
    import torch

    namespace, op, overload = parse_op_name(name)
    if overload is not None or "::" not in name:
        raise TorchIRError(f"define_op({name!r}): name the op as torch does, 'namespace::op' (no overload)")
    if not callable(kernel):
        raise TorchIRError(f"define_op({name!r}): the kernel must be callable, got {type(kernel).__name__}")
    if not hasattr(getattr(torch.ops, namespace), op):
        try:
            defined = torch.library.custom_op(name, kernel, mutates_args=tuple(mutates_args), schema=schema)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TorchIRError(f"define_op({name!r}): torch.library cannot define it: {exc}") from None
        defined.register_fake(fake or _like_first_tensor)
    defined_op = getattr(getattr(torch.ops, namespace), op)
    register_op(  # the kernel is the plugin's: like any registered kernel, it may run from a file
        name,
        kernel=defined_op.default,
        pure=pure if not mutates_args else False,
        cost=cost,
        commutative=commutative,
        canonical=canonical,
        replace=True,
    )
    return defined_op


def _like_first_tensor(*args: Any, **kwargs: Any) -> Any:
    """The default fake kernel: a new tensor like the first tensor operand."""
    import torch

    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return torch.empty_like(value)
    raise TorchIRError("define_op: the default fake kernel needs a tensor operand; give fake=")


__all__ = ["define_op"]
