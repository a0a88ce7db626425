"""An IR verified with one weight perturbed on the IR's side only: a verify report that must diverge there."""

from __future__ import annotations

from typing import Any

import torch

from torch_ir import extract_ir, verify_ir_with_state_dict
from torch_ir.ir.module import IR
from torch_ir.runtime.verifier import VerificationReport
from torch_ir.zoo import ZOO


def verify_with_perturbed(
    ir: IR,
    model: torch.nn.Module,
    args: tuple[Any, ...],
    weight: str,
    kwargs: dict[str, Any] | None = None,
    noise: float = 0.25,
) -> VerificationReport:
    """``ir`` verified against ``model``, the IR running with ``noise`` times Gaussian noise added to ``weight``:
    the first divergence is the node that reads it.

    Random noise, not a constant: a constant added to a weight that reads a normalized input (zero mean)
    can leave the output unchanged.
    """
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state[weight] += noise * torch.randn(state[weight].shape, generator=torch.Generator().manual_seed(1))
    ok, report = verify_ir_with_state_dict(ir, state, model, args, kwargs)
    assert not ok and report.divergence is not None, f"perturbing {weight} changed nothing"
    return report


def verify_gpt_with_perturbed(weight: str, noise: float = 0.25) -> tuple[IR, VerificationReport]:
    """The zoo GPT's IR (extracted on meta) verified against the model with random weights, ``weight``
    perturbed on the IR's side (``verify_with_perturbed``)."""
    entry = ZOO["gpt"]
    with torch.device("meta"):
        ir = extract_ir(entry.build().eval(), entry.example_args("meta"))
    torch.manual_seed(0)
    model = entry.build().eval()
    ids = torch.randint(0, 1000, (1, 32), generator=torch.Generator().manual_seed(2))
    return ir, verify_with_perturbed(ir, model, (ids,), weight, noise=noise)
