"""Startup of the command line: ``torch-ir --help`` against ``python -c "import torch"``.

The requirement: ``--help`` takes less than half the time of importing torch (the CLI imports torch only
when a command needs it). Both are fresh processes timed in the same run, the baseline first;
``benchmark.extra_info["ratio"]`` is help seconds / import-torch seconds (goal: below 0.5). Run with
``pytest benchmarks/bench_cli.py --benchmark-only``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.5
ROUNDS = 5


def _seconds(argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def test_help_vs_import_torch(benchmark) -> None:
    baseline = statistics.mean(_seconds([sys.executable, "-c", "import torch"]) for _ in range(ROUNDS))
    report_help = [sys.executable, "-m", "torch_ir", "--help"]

    def run_help() -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(report_help, check=True, capture_output=True, env=env)

    benchmark.pedantic(run_help, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        {"import_torch_seconds": baseline, "help_seconds": seconds, "ratio": seconds / baseline, "goal": GOAL}
    )
    print(f"\ntorch-ir --help {seconds:.3f} s, import torch {baseline:.3f} s, ratio {seconds / baseline:.3f}")


def test_report_of_saved_ir_vs_import_torch(benchmark, tmp_path: Path) -> None:
    """``torch-ir report IR.json --stats`` on a saved IR imports no torch either."""
    ir = tmp_path / "gpt.json"
    _seconds([sys.executable, "-m", "torch_ir", "extract", "zoo:gpt", "-o", str(ir), "-q"])
    baseline = statistics.mean(_seconds([sys.executable, "-c", "import torch"]) for _ in range(ROUNDS))

    def run_report() -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "-m", "torch_ir", "report", str(ir), "--stats"], check=True, env=env, capture_output=True
        )

    benchmark.pedantic(run_report, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        {"import_torch_seconds": baseline, "report_seconds": seconds, "ratio": seconds / baseline, "goal": GOAL}
    )
