"""The cost of ``verify_ir`` against one eager forward of the same model, in the same run.

Models: the GPT-2 and Llama test models of ``tests/transformers_models.py`` (2 layers, d=32, vocabulary
128) and a larger GPT-2 (4 layers, d=128, vocabulary 1024), 32 tokens, random weights. Times are CPU time
of this process with torch on one thread (the machines these run on are shared, and wall time swings
more than the figure measured). One trial (the
verification's own copies of the weights and inputs, the weight-source rule, the write check, the region
coverage, the tolerance scaled by magnitude) and the default trials are each timed as a ratio to one eager
forward; ``extra_info`` holds every figure. The file also runs against a torch-ir without trials (where
``verify_ir`` has no ``trials`` argument, one call is one trial), so the same command times the previous
verifier on the same machine: ``.venv/bin/python -m pytest benchmarks/bench_verify.py -o
python_files='bench_*.py' --benchmark-only -s``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch

from tests.transformers_models import build_causal_lm, causal_lm_inputs
from torch_ir import extract_ir
from torch_ir.runtime.verifier import verify_ir

pytest.importorskip("transformers")

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "gpt2-tiny": ("gpt2", {}),
    "llama-tiny": ("llama", {}),
    "gpt2-4L": ("gpt2", dict(n_layer=4, n_embd=128, n_head=4, vocab_size=1024, n_positions=128)),
}
SEQ = 32
HAS_TRIALS = "trials" in inspect.signature(verify_ir).parameters


def _best_of(fn: Callable[[], Any], rounds: int, number: int = 1) -> float:
    """The least CPU time of ``rounds`` runs of ``number`` calls, per call."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(number):
            fn()
        best = min(best, (time.process_time() - start) / number)
    return best


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=list(CASES))
def case(request: pytest.FixtureRequest) -> tuple[str, Any, Any, tuple[Any, ...], dict[str, Any]]:
    model_type, overrides = CASES[request.param]
    meta_args, meta_kwargs = causal_lm_inputs("meta", batch=1, seq=SEQ)
    ir = extract_ir(build_causal_lm(model_type, "meta", **overrides), meta_args, example_kwargs=meta_kwargs)
    real = build_causal_lm(model_type, "cpu", **overrides)
    args, kwargs = causal_lm_inputs("cpu", batch=1, seq=SEQ)
    return request.param, ir, real, args, kwargs


def test_verify_vs_eager(benchmark: Any, case: tuple[str, Any, Any, tuple[Any, ...], dict[str, Any]]) -> None:
    name, ir, real, args, kwargs = case
    one = {"trials": 1} if HAS_TRIALS else {}

    def verify_once() -> None:
        ok, report = verify_ir(ir, real, args, kwargs, **one)
        assert ok, str(report)

    def verify_default() -> None:
        ok, report = verify_ir(ir, real, args, kwargs)
        assert ok, str(report)

    with torch.no_grad():
        eager = _best_of(lambda: real(*args, **kwargs), rounds=7, number=10)
    ours = _best_of(verify_once, rounds=7)
    default = _best_of(verify_default, rounds=5) if HAS_TRIALS else ours
    benchmark.pedantic(verify_once, rounds=3, iterations=1)
    benchmark.extra_info.update(
        {
            "case": name,
            "trials_supported": HAS_TRIALS,
            "eager_ms": eager * 1e3,
            "verify_one_trial_ms": ours * 1e3,
            "verify_default_ms": default * 1e3,
            "ratio_one_trial": ours / eager,
            "ratio_default": default / eager,
            "nodes": len(ir.nodes),
        }
    )
    print(
        f"\n{name}: eager {eager * 1e3:.2f} ms, verify (1 trial) {ours * 1e3:.1f} ms = {ours / eager:.1f}x, "
        f"verify (default) {default * 1e3:.1f} ms = {default / eager:.1f}x"
    )
