"""An IR verified with one weight perturbed on the IR's side only: a verify report that must diverge there."""

from __future__ import annotations

import torch

from torch_ir import extract_ir, verify_ir_with_state_dict
from torch_ir.ir.module import IR
from torch_ir.runtime.verifier import VerificationReport
from torch_ir.zoo import ZOO


def verify_gpt_with_perturbed(weight: str, noise: float = 0.25) -> tuple[IR, VerificationReport]:
    """The zoo GPT's IR (extracted on meta) verified against the model with random weights, the IR running with
    ``noise`` times Gaussian noise added to ``weight``: the first divergence is the node that reads it.

    Random noise, not a constant: a constant added to a weight that reads a normalized input (zero mean)
    can leave the output unchanged.
    """
    entry = ZOO["gpt"]
    with torch.device("meta"):
        ir = extract_ir(entry.build().eval(), entry.example_args("meta"))
    torch.manual_seed(0)
    model = entry.build().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state[weight] += noise * torch.randn(state[weight].shape, generator=torch.Generator().manual_seed(1))
    ids = torch.randint(0, 1000, (1, 32), generator=torch.Generator().manual_seed(2))
    ok, report = verify_ir_with_state_dict(ir, state, model, (ids,))
    assert not ok and report.divergence is not None, f"perturbing {weight} changed nothing"
    return ir, report
