"""The default pipeline on a Llama-2-7B-shape config (32 layers, on meta) against torch.export alone.

The requirement: the pipeline adds at most 10% to the export time. Both are measured in the same run;
``benchmark.extra_info["ratio"]`` is pipeline seconds / export seconds. Run with
``pytest benchmarks/bench_pipeline.py --benchmark-only``.
"""

from __future__ import annotations

import os
import time

import pytest
import torch

transformers = pytest.importorskip("transformers")

LAYERS = int(os.environ.get("TORCH_IR_BENCH_LAYERS", "32"))


def _llama() -> torch.nn.Module:
    config = transformers.LlamaConfig(
        hidden_size=4096,
        intermediate_size=11008,
        num_attention_heads=32,
        num_key_value_heads=32,
        num_hidden_layers=LAYERS,
        vocab_size=32000,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(config).eval()


def test_default_pipeline_vs_export(benchmark):
    from torch_ir.frontends.torch_export import convert_program, export_program
    from torch_ir.ir.module import IR
    from torch_ir.passes import PassManager

    model = _llama()
    ids = torch.zeros(1, 128, dtype=torch.long, device="meta")
    start = time.perf_counter()
    program = export_program(model, (ids,), example_kwargs={"use_cache": False})
    export_seconds = time.perf_counter() - start
    graphs = iter([convert_program(program, model) for _ in range(3)])

    def run_pipeline() -> IR:
        return PassManager("default").run(IR(next(graphs)))

    ir = benchmark.pedantic(run_pipeline, rounds=3, iterations=1)
    first = ir.pass_log
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        {
            "export_seconds": export_seconds,
            "pipeline_seconds_mean": seconds,
            "ratio": seconds / export_seconds,
            "nodes": len(ir.nodes),
            "per_pass_ms": {row["pass"]: round(row["seconds"] * 1e3, 2) for row in first},
        }
    )
    from torch_ir.passes import format_pass_log

    print("\n" + format_pass_log(first))
    print(f"export {export_seconds:.2f} s, default pipeline {seconds:.3f} s, ratio {seconds / export_seconds:.3f}")
