"""``compute_statistics`` on the Llama-2-70B-shape IR (80 layers, GQA with 8 kv heads, on meta).

Op facts (cost model, view aliasing) come from the op registry (``torch_ir.ops``); this measures what a
statistics run costs per node with those lookups. Baseline from the same run: ``Graph.clone()`` of the
same IR (the cost of touching every node once); ``extra_info["ratio"]`` = statistics / clone.
``TORCH_IR_BENCH_LAYERS`` sets the layer count (default 80). Run with ``pytest
benchmarks/bench_statistics.py --benchmark-only -o python_files='bench_*.py'`` from the repository root.
"""

from __future__ import annotations

import os
import timeit
from typing import Any

import pytest

from torch_ir import extract_ir
from torch_ir.analysis.statistics import compute_statistics
from torch_ir.frontends.model_specs import resolve_model
from torch_ir.ir.graph import Graph

pytest.importorskip("transformers")

LAYERS = int(os.environ.get("TORCH_IR_BENCH_LAYERS", "80"))


@pytest.fixture(scope="module")
def llama70b() -> Graph:
    bundle = resolve_model("hf:llama-2-70b", config_overrides={"num_hidden_layers": LAYERS})
    return extract_ir(bundle.model, bundle.args, example_kwargs=bundle.kwargs).graph


def test_statistics_70b(benchmark: Any, llama70b: Graph) -> None:
    clone_seconds = min(timeit.repeat(llama70b.clone, number=1, repeat=5))
    stats = benchmark.pedantic(lambda: compute_statistics(llama70b), rounds=5, iterations=1)
    seconds = benchmark.stats.stats.min
    assert stats.flops is not None and stats.flops > 128 * stats.parameter_count  # 2 FLOPs per parameter per token
    benchmark.extra_info.update(
        layers=LAYERS,
        nodes=len(llama70b),
        statistics_s=seconds,
        clone_s=clone_seconds,
        ratio=seconds / clone_seconds,
        flops=stats.flops,
    )
