"""Interpreter forward vs eager forward on a small transformers GPT-2 with real weights.

The ratio (interpreter / eager, goal <= 1.3) is measured in the same run and stored in
``benchmark.extra_info``; run with ``make bench`` or ``pytest benchmarks --benchmark-only``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import torch

from tests.transformers_models import build_causal_lm, causal_lm_inputs
from torch_ir import extract_ir
from torch_ir.runtime.interpreter import Interpreter

pytest.importorskip("transformers")

SMALL_GPT2 = dict(n_layer=4, n_embd=128, n_head=4, vocab_size=1024, n_positions=128)


def _best_of(fn: Callable[[], Any], rounds: int = 7, number: int = 20) -> float:
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


@pytest.fixture(scope="module")
def gpt2():
    args, kwargs = causal_lm_inputs("meta", batch=1, seq=32)
    ir = extract_ir(build_causal_lm("gpt2", "meta", **SMALL_GPT2), args, example_kwargs=kwargs)
    real = build_causal_lm("gpt2", "cpu", **SMALL_GPT2)
    args, kwargs = causal_lm_inputs("cpu", batch=1, seq=32)
    return ir, real, args, kwargs


def test_interpreter_vs_eager_gpt2(benchmark, gpt2) -> None:
    ir, real, args, kwargs = gpt2
    interp = Interpreter(ir, real, strict=False)
    with torch.no_grad():
        torch.testing.assert_close(interp(*args, **kwargs)["logits"], real(*args, **kwargs).logits)
        eager = _best_of(lambda: real(*args, **kwargs))
        ours = _best_of(lambda: interp(*args, **kwargs))
        benchmark(interp, *args, **kwargs)
    benchmark.extra_info.update(
        {
            "eager_ms": eager * 1e3,
            "interpreter_ms": ours * 1e3,
            "ratio": ours / eager,
            "goal": 1.3,
            "nodes": len(ir.nodes),
        }
    )
    print(f"\ninterpreter {ours * 1e3:.3f} ms, eager {eager * 1e3:.3f} ms, ratio {ours / eager:.2f} (goal <= 1.3)")
