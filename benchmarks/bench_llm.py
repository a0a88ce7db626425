"""LLM programs: ``extract_llm`` (prefill + decode over a 4,096-position static KV cache, on meta) against
torch.export of the same two graphs, at the Llama-2 7B and 70B shapes.

Two fresh processes (``probe.py``): ``export`` is one torch.export of the model's forward on meta (the
memory baseline); ``llm`` is ``extract_llm`` followed in the same process by torch.export of the prefill
and decode graphs (the time baseline, paired). ``ratio`` = extract_llm / those two exports; it includes
what torch-ir adds on purpose: functionalizing both graphs (the cache writes become state updates),
conversion, the default pipeline on both entries. ``rss_delta_mb`` = the llm process's peak RSS minus the
export-only process's (goal: within 128 MB).
"""

from __future__ import annotations

import importlib.util

import pytest
from conftest import run_against_export

CASES = ["llama-7b-32L", "llama-70b-80L"]


@pytest.mark.parametrize("name", CASES)
def test_llm_program(name, benchmark, tmp_path):
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers is not installed")
    benchmark.group = "llm-program"
    export, run = run_against_export(benchmark, "llm", name, tmp_path, timeout=1800)
    info = benchmark.extra_info
    info["ratio"] = run["seconds"] / run["paired_export"]
    info["extract_llm_s"] = run["seconds"]
    info["two_exports_s"] = run["paired_export"]
    info["rss_delta_mb"] = (run["peak_rss"] - export["peak_rss"]) / 2**20
    info["goal_rss_delta_mb"] = 128
    info["prefill_nodes"] = run["nodes"]["prefill"]
    info["decode_nodes"] = run["nodes"]["decode"]
