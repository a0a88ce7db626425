"""The pattern rewriter's greedy driver on the Llama-2-70B-shape IR (80 layers, GQA with 8 kv heads, on meta).

Two measurements, each with a baseline from the same run (``extra_info["ratio"]`` = driver / baseline):

- ``rewrite``: ``apply_patterns`` with the example patterns (fuse-gqa-attention, fuse-linear-act) on a
  clone of the IR: 80 attention fusions and 80 SiLU fusions, types inferred for every new op. Baseline:
  ``Graph.clone()`` of the same IR (the cost of touching every node once).
- ``sweep``: the driver with the same patterns on the already fused IR (nothing matches: one worklist sweep,
  the driver's overhead). Baseline: a hand-written loop calling each pattern on each node.

``extra_info["nodes_per_second"]`` is graph nodes / driver seconds. ``TORCH_IR_BENCH_LAYERS`` sets the
layer count (default 80). Run with ``pytest benchmarks/bench_rewrite.py --benchmark-only
-o python_files='bench_*.py'`` from the repository root.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.passes.gqa_attention import FuseGQAAttention  # noqa: E402
from examples.passes.linear_activation import FuseLinearActivation  # noqa: E402
from torch_ir.ir.graph import Graph  # noqa: E402
from torch_ir.passes.rewrite import PatternRewriter, apply_patterns  # noqa: E402

LAYERS = int(os.environ.get("TORCH_IR_BENCH_LAYERS", "80"))


@pytest.fixture(scope="module")
def llama70b() -> Graph:
    from torch_ir import extract_ir

    config = transformers.LlamaConfig(
        hidden_size=8192,
        intermediate_size=28672,
        num_attention_heads=64,
        num_key_value_heads=8,
        num_hidden_layers=LAYERS,
        vocab_size=32000,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config).eval()
    ids = torch.zeros(1, 128, dtype=torch.long, device="meta")
    return extract_ir(model, (ids,), example_kwargs={"use_cache": False}).graph


def _patterns() -> list[Any]:
    return [*FuseGQAAttention().patterns(), *FuseLinearActivation().patterns()]


def test_rewrite_70b(benchmark: Any, llama70b: Graph) -> None:
    patterns = _patterns()
    clone_seconds = min(_seconds(llama70b.clone) for _ in range(3))
    graphs = iter([llama70b.clone() for _ in range(3)])

    def run() -> Any:
        return apply_patterns(next(graphs), patterns)

    result = benchmark.pedantic(run, rounds=3, iterations=1)
    seconds = benchmark.stats.stats.min
    assert result.converged and result.counts == {"gqa-attention": LAYERS, "linear-silu": LAYERS}
    benchmark.extra_info.update(
        layers=LAYERS,
        nodes=len(llama70b),
        rewrites=result.rewrites,
        driver_s=seconds,
        clone_s=clone_seconds,
        ratio=seconds / clone_seconds,
        nodes_per_second=len(llama70b) / seconds,
    )


def test_sweep_without_matches_70b(benchmark: Any, llama70b: Graph) -> None:
    patterns = _patterns()
    fused = llama70b.clone()
    apply_patterns(fused, patterns)

    def hand_loop() -> None:
        for node in fused.nodes:
            for pattern in patterns:
                if not pattern.op_types or node.op_type in pattern.op_types:
                    pattern.match_and_rewrite(node, PatternRewriter(fused, node))

    loop_seconds = min(_seconds(hand_loop) for _ in range(3))
    result = benchmark.pedantic(lambda: apply_patterns(fused, patterns), rounds=3, iterations=1)
    seconds = benchmark.stats.stats.min
    assert not result.modified and result.iterations == 1
    benchmark.extra_info.update(
        layers=LAYERS,
        nodes=len(fused),
        driver_s=seconds,
        hand_loop_s=loop_seconds,
        ratio=seconds / loop_seconds,
        nodes_per_second=len(fused) / seconds,
    )


def _seconds(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
