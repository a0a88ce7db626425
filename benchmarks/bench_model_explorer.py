"""Model Explorer files of a Llama-2-70B-shape IR (80 layers, GQA, on meta) against its torch-ir JSON.

What ``torch-ir report IR --format model-explorer`` and the adapter do with a large IR: convert every graph
(``ir_to_graphs``), compute the cost overlays, and serialize all of it. The baseline, timed in the same
run on the same IR, is ``torch_ir.serde.dumps``: writing that IR in torch-ir's own format.
``extra_info["ratio"]`` is ``bundle_files`` seconds (graphs and the four cost overlays, as JSON text) /
``dumps`` seconds. Two IRs: the flat one ``extract_ir`` gives, and the same model with its decoder layers
outlined into one function (``outline-repeated-blocks``), whose body Model Explorer gets once.
``TORCH_IR_BENCH_LAYERS`` sets the layer count (default 80). Run with
``pytest benchmarks/bench_model_explorer.py --benchmark-only``.
"""

from __future__ import annotations

import os
import time

import pytest
import torch
from cases import LLAMA_70B

transformers = pytest.importorskip("transformers")

LAYERS = int(os.environ.get("TORCH_IR_BENCH_LAYERS", "80"))
ROUNDS = 3


OUTLINE = "annotate-shapes,canonicalize,outline-repeated-blocks"
"""The pipeline of the outlined IR (outlining comes before CSE, which would make the layers differ)."""


def _llama_70b_ir(outlined: bool):
    from torch_ir import PassManager, extract_ir

    config = transformers.LlamaConfig(
        **LLAMA_70B, num_hidden_layers=LAYERS, vocab_size=32000, bos_token_id=1, eos_token_id=2, pad_token_id=0
    )
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config).eval()
    ids = torch.zeros(1, 128, dtype=torch.long, device="meta")
    if not outlined:
        return extract_ir(model, (ids,), example_kwargs={"use_cache": False})
    ir = extract_ir(model, (ids,), example_kwargs={"use_cache": False}, pipeline="none")
    PassManager(OUTLINE).run(ir)
    return ir


@pytest.mark.parametrize("outlined", [False, True], ids=["flat", "outlined"])
def test_model_explorer_files_vs_json(benchmark, outlined):
    from torch_ir.backends.model_explorer.bundle import GRAPHS_FILE, bundle_files
    from torch_ir.serde import dumps

    ir = _llama_70b_ir(outlined)
    json_seconds = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        dumps(ir)
        json_seconds.append(time.perf_counter() - start)
    files = benchmark.pedantic(lambda: bundle_files(ir), rounds=ROUNDS, iterations=1)
    graphs = files.pop(GRAPHS_FILE)
    overlays = list(files.values())
    seconds = benchmark.stats.stats.mean
    baseline = sum(json_seconds) / len(json_seconds)
    benchmark.extra_info.update(
        {
            "layers": LAYERS,
            "outlined": outlined,
            "nodes": ir.num_nodes(),
            "functions": len(ir.functions),
            "weights": len(ir.weights),
            "json_seconds_mean": baseline,
            "ratio": seconds / baseline,
            "graphs_json_mb": len(graphs) / 2**20,
            "overlays_json_mb": sum(len(o) for o in overlays) / 2**20,
        }
    )
    print(
        f"\n{LAYERS} layers{' outlined' if outlined else ''}, {ir.num_nodes()} nodes: "
        f"Model Explorer files {seconds:.2f} s, "
        f"torch-ir JSON {baseline:.2f} s, ratio {seconds / baseline:.2f}; graphs.json {len(graphs) / 2**20:.1f} MiB"
    )
