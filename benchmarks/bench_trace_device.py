"""Tracing as the CPU (fake tensors, weight-free) against torch.export on meta, at the Llama-2-7B shape.

Two fresh processes (``probe.py``): ``export`` is torch.export on meta alone; ``trace`` is torch-ir's
export stage, ``export_program(device="cpu")``, followed in the same process by torch.export on meta, so
``ratio`` (trace / paired export) is free of run-to-run variance. ``rss_delta_mb`` is the trace process's
peak RSS minus the export-only process's. Goals: ratio at most 1.10, RSS delta at most 64 MB.
"""

from __future__ import annotations

import importlib.util

import pytest
from conftest import run_against_export

CASES = ["llama-7b-8L", "llama-7b-32L"]


@pytest.mark.parametrize("name", CASES)
def test_trace_as_cpu(name, benchmark, tmp_path):
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers is not installed")
    benchmark.group = "trace-device"
    export, trace = run_against_export(benchmark, "trace", name, tmp_path)
    info = benchmark.extra_info
    info["ratio"] = trace["seconds"] / trace["paired_export"]
    info["goal"] = 1.10
    info["trace_s"] = trace["seconds"]
    info["paired_export_s"] = trace["paired_export"]
    info["export_only_s"] = export["seconds"]
    info["rss_delta_mb"] = (trace["peak_rss"] - export["peak_rss"]) / 2**20
