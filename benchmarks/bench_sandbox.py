"""What the interpreter's safety checks cost: plan building and a call, with the checks and with them off.

The checks (``torch_ir.runtime.sandbox``) run while the plan is built (side-effect rule, static memory
budget, in-place write tracking) and, for IRs with symbolic dims, once per call (the memory budget under
the inputs' bindings); the dry run on fake tensors (``torch_ir.runtime.dry_run``, on for IRs loaded from
a path) once per distinct input signature. Measured on a small transformers GPT-2 exported with a dynamic
sequence length; the figures go to ``benchmark.extra_info``. Run with ``pytest benchmarks
--benchmark-only -k sandbox``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import torch

from tests.transformers_models import build_causal_lm, causal_lm_inputs
from torch_ir import extract_ir
from torch_ir.runtime import sandbox
from torch_ir.runtime.dry_run import dry_run
from torch_ir.runtime.interpreter import Interpreter

pytest.importorskip("transformers")

SMALL_GPT2 = dict(n_layer=4, n_embd=128, n_head=4, vocab_size=1024, n_positions=128)


def _best_of(fn: Callable[[], Any], rounds: int = 5, number: int = 10) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


class _Unchecked(sandbox.ExecutionPolicy):
    """The policy with every check off, for comparison only."""

    def guard(self, node: Any, fn: Any, schema: Any) -> Any:
        return fn

    def check_run(self, graph: Any, inputs: Any, symbolic: Any = None) -> Any:
        return None


@pytest.fixture(scope="module")
def dynamic_gpt2():
    from torch.export import Dim

    args, kwargs = causal_lm_inputs("meta", batch=1, seq=32)
    ir = extract_ir(
        build_causal_lm("gpt2", "meta", **SMALL_GPT2),
        args,
        example_kwargs=kwargs,
        dynamic_shapes={"input_ids": {1: Dim("seq", min=2, max=128)}, "use_cache": None},
    )
    real = build_causal_lm("gpt2", "cpu", **SMALL_GPT2)
    args, kwargs = causal_lm_inputs("cpu", batch=1, seq=32)
    return ir, real, args, kwargs


def test_sandbox_overhead_gpt2(benchmark, dynamic_gpt2, monkeypatch: pytest.MonkeyPatch) -> None:
    ir, real, args, kwargs = dynamic_gpt2
    checked = Interpreter(ir, real, strict=False)
    plan_checked = _best_of(lambda: Interpreter(ir))
    call_checked = _best_of(lambda: checked(*args, **kwargs))
    flat = checked.flatten_inputs(args, kwargs)
    run_checks = _best_of(lambda: checked._guard.check_inputs(flat), number=100)
    dry = _best_of(lambda: dry_run(checked, flat, checked.policy.budget), rounds=3, number=3)
    monkeypatch.setattr("torch_ir.runtime.interpreter.ExecutionPolicy", _Unchecked)
    unchecked = Interpreter(ir, real, strict=False)
    plan_unchecked = _best_of(lambda: Interpreter(ir))
    call_unchecked = _best_of(lambda: unchecked(*args, **kwargs))
    with torch.no_grad():
        torch.testing.assert_close(checked(*args, **kwargs)["logits"], unchecked(*args, **kwargs)["logits"])
    benchmark(checked, *args, **kwargs)
    benchmark.extra_info.update(
        {
            "nodes": len(ir.nodes),
            "plan_checked_ms": plan_checked * 1e3,
            "plan_unchecked_ms": plan_unchecked * 1e3,
            "call_checked_ms": call_checked * 1e3,
            "call_unchecked_ms": call_unchecked * 1e3,
            "run_checks_ms": run_checks * 1e3,
            "dry_run_ms": dry * 1e3,
        }
    )
    print(
        f"\n{len(ir.nodes)} nodes: plan {plan_checked * 1e3:.2f} ms checked vs {plan_unchecked * 1e3:.2f} ms; "
        f"call {call_checked * 1e3:.3f} ms checked vs {call_unchecked * 1e3:.3f} ms; "
        f"the per-call checks alone {run_checks * 1e3:.3f} ms; a dry run (once per input signature) "
        f"{dry * 1e3:.1f} ms"
    )
