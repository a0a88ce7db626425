"""Repeated blocks as functions: extraction and interpretation of a deep tiny-config Llama (32 layers).

Extraction, all three in the same process and the same run, each the best of ``ROUNDS`` after a warm-up on
a 2-layer model: ``extract_ir(..., functions=True)`` (each decoder layer traced once, the model with one
``func.call`` per layer, the ``functions`` pipeline), the flat ``extract_ir`` (every layer traced, the
default pipeline), and ``torch.export.export(..., strict=False)`` alone on meta (the floor of the flat
route). ``ratio`` = functions / torch.export (wall clock); the other ratios, and the same ratios in CPU time
(``cpu_*``, steadier on a shared machine), are in ``extra_info``.

LLM programs: ``extract_llm`` with functions and without (the default), against one torch.export of the
model's forward (goal: at most 1.5x).

Interpretation, real weights on the CPU: the function program (one body, 32 calls) against the flat IR of
the same model, each ``Interpreter`` called on the same input; ``ratio`` = functions / flat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import torch
from conftest import run_against_export, run_probe

from tests.transformers_models import build_causal_lm, causal_lm_inputs
from torch_ir import extract_ir, extract_llm
from torch_ir.ir.calls import CALL_OP
from torch_ir.runtime.interpreter import Interpreter

pytest.importorskip("transformers")

LAYERS = 32
ROUNDS = 3


def _best(fn: Callable[[], Any], rounds: int) -> tuple[float, float, Any]:
    """The least wall-clock and the least CPU time (this process's) of ``rounds`` calls, and the last result:
    on a shared machine the CPU time is the steadier figure."""
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
    return wall, cpu, result


def test_extract_functions_vs_flat_vs_export(benchmark, tmp_path) -> None:
    args, kwargs = causal_lm_inputs("meta")
    warm = build_causal_lm("llama", "meta", num_hidden_layers=2)
    extract_ir(warm, args, example_kwargs=kwargs, functions=True)
    extract_ir(warm, args, example_kwargs=kwargs)
    torch.export.export(warm, args, kwargs=kwargs, strict=False)
    model = build_causal_lm("llama", "meta", num_hidden_layers=LAYERS)

    export_s, export_cpu, _ = _best(lambda: torch.export.export(model, args, kwargs=kwargs, strict=False), ROUNDS)
    flat_s, flat_cpu, flat = _best(lambda: extract_ir(model, args, example_kwargs=kwargs), ROUNDS)
    functions_s, functions_cpu, traced = _best(
        lambda: extract_ir(model, args, example_kwargs=kwargs, functions=True), ROUNDS
    )
    benchmark.pedantic(lambda: extract_ir(model, args, example_kwargs=kwargs, functions=True), rounds=1)

    assert sum(n.op_type == CALL_OP for n in traced.graph.nodes) == LAYERS
    flat.save(tmp_path / "flat.json")
    traced.save(tmp_path / "functions.json")
    flat_bytes, functions_bytes = (tmp_path / "flat.json").stat().st_size, (tmp_path / "functions.json").stat().st_size
    benchmark.group = "functions"
    benchmark.extra_info.update(
        {
            "layers": LAYERS,
            "export_s": export_s,
            "flat_extract_s": flat_s,
            "functions_extract_s": functions_s,
            "ratio": functions_s / export_s,
            "flat_vs_export": flat_s / export_s,
            "functions_vs_flat": functions_s / flat_s,
            "cpu_functions_vs_export": functions_cpu / export_cpu,
            "cpu_flat_vs_export": flat_cpu / export_cpu,
            "cpu_functions_vs_flat": functions_cpu / flat_cpu,
            "flat_nodes": len(flat.graph.nodes),
            "functions_nodes": sum(len(f.graph.nodes) for f in traced.functions.values()),
            "json_ratio": functions_bytes / flat_bytes,
        }
    )


def test_extract_llm_functions_vs_flat_vs_export(benchmark) -> None:
    """``extract_llm`` (prefill + decode, 64-position static cache) with each layer traced once per entry,
    and with every layer inline (the default), against one torch.export of the model's forward."""
    args, kwargs = causal_lm_inputs("meta")
    warm = build_causal_lm("llama", "meta", num_hidden_layers=2)
    extract_llm(warm, max_cache_len=64, functions=True)
    extract_llm(warm, max_cache_len=64)
    model = build_causal_lm("llama", "meta", num_hidden_layers=LAYERS)
    export_s, export_cpu, _ = _best(lambda: torch.export.export(model, args, kwargs=kwargs, strict=False), 2)
    flat_s, flat_cpu, _ = _best(lambda: extract_llm(model, max_cache_len=64), 1)
    functions_s, functions_cpu, program = _best(lambda: extract_llm(model, max_cache_len=64, functions=True), 2)
    benchmark.pedantic(lambda: extract_llm(model, max_cache_len=64, functions=True), rounds=1)
    assert sum(n.op_type == CALL_OP for n in program.entry("decode").nodes) == LAYERS
    benchmark.group = "functions"
    benchmark.extra_info.update(
        {
            "layers": LAYERS,
            "export_s": export_s,
            "flat_llm_s": flat_s,
            "functions_llm_s": functions_s,
            "ratio": functions_s / export_s,
            "goal": 1.5,
            "flat_vs_export": flat_s / export_s,
            "functions_vs_flat": functions_s / flat_s,
            "cpu_functions_vs_export": functions_cpu / export_cpu,
            "cpu_flat_vs_export": flat_cpu / export_cpu,
        }
    )


SCALE = {"llama-70b-80L": 0.25, "llama-405b-126L": 0.2}
"""The real shapes (on meta) and the goal for extract --functions / torch.export of the same model."""


@pytest.mark.parametrize("name", list(SCALE))
def test_extract_functions_at_scale(name: str, benchmark, tmp_path) -> None:
    """Fresh processes (``probe.py``): ``extract_ir(..., functions=True)`` + JSON write, paired with a
    torch.export of the same model in the same process; the flat extraction's JSON for the size ratio
    (goal: at most 1/10)."""
    benchmark.group = "functions-at-scale"
    _, run = run_against_export(benchmark, "functions", name, tmp_path, timeout=1800)
    flat = run_probe("extract", name, tmp_path, timeout=1800)
    if not flat.get("ok"):
        pytest.fail(f"flat extract: {flat.get('error')}")
    benchmark.extra_info.update(
        {
            "ratio": run["seconds"] / run["paired_export"],
            "goal": SCALE[name],
            "functions_extract_s": run["seconds"],
            "export_s": run["paired_export"],
            "flat_extract_s": flat["seconds"],
            "flat_vs_export": flat["seconds"] / flat["paired_export"],
            "json_ratio": run["json_bytes"] / flat["json_bytes"],
            "json_goal": 0.1,
            "calls": run["calls"],
            "rss_delta_mb": (run["peak_rss"] - flat["peak_rss"]) / 2**20,
        }
    )


@pytest.mark.parametrize("name", ["llama-7b-32L", "llama-70b-80L"])
def test_extract_llm_functions_at_scale(name: str, benchmark, tmp_path) -> None:
    """``extract_llm(..., functions=True)`` (4,096-position static cache) against one torch.export of the
    model's forward, paired in the same fresh process (goal: at most 1.5x)."""
    benchmark.group = "functions-at-scale"
    _, run = run_against_export(benchmark, "llm-functions", name, tmp_path, timeout=1800)
    benchmark.extra_info.update(
        {
            "ratio": run["seconds"] / run["paired_export"],
            "goal": 1.5,
            "extract_llm_s": run["seconds"],
            "export_s": run["paired_export"],
            "calls": run["calls"],
        }
    )


@pytest.fixture(scope="module")
def programs() -> tuple[Any, Any, torch.nn.Module, tuple[Any, ...], dict[str, Any]]:
    args, kwargs = causal_lm_inputs("meta", seq=32)
    model = build_causal_lm("llama", "meta", num_hidden_layers=LAYERS)
    traced = extract_ir(model, args, example_kwargs=kwargs, functions=True)
    flat = extract_ir(model, args, example_kwargs=kwargs)
    real = build_causal_lm("llama", "cpu", num_hidden_layers=LAYERS)
    args, kwargs = causal_lm_inputs("cpu", seq=32)
    return traced, flat, real, args, kwargs


def test_interpreter_functions_vs_flat(benchmark, programs) -> None:
    traced, flat, real, args, kwargs = programs
    run_traced, run_flat = Interpreter(traced, real, strict=False), Interpreter(flat, real, strict=False)
    with torch.no_grad():
        torch.testing.assert_close(run_traced(*args, **kwargs)["logits"], run_flat(*args, **kwargs)["logits"])

        def many(interp: Interpreter) -> Callable[[], None]:
            def call() -> None:
                for _ in range(10):
                    interp(*args, **kwargs)

            return call

        for _ in range(2):
            many(run_traced)(), many(run_flat)()
        flat_s, flat_cpu, _ = _best(many(run_flat), 5)
        functions_s, functions_cpu, _ = _best(many(run_traced), 5)
        benchmark(run_traced, *args, **kwargs)
    benchmark.group = "functions"
    benchmark.extra_info.update(
        {
            "layers": LAYERS,
            "flat_ms": flat_s * 100,
            "functions_ms": functions_s * 100,
            "ratio": functions_s / flat_s,
            "cpu_ratio": functions_cpu / flat_cpu,
            "goal": 1.2,
        }
    )
