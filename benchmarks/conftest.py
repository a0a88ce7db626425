"""Shared pieces of the benchmarks: running a probe in a fresh process, and versions for RESULTS.md."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent


def best_seconds(fn: Callable[[], Any], rounds: int = 3) -> float:
    """The least wall-clock time of ``rounds`` calls of ``fn``, in seconds."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_probe(mode: str, case: str, out_dir: Path, timeout: float = 900) -> dict[str, Any]:
    """Run ``probe.py MODE CASE`` in a fresh interpreter; its figures, or ``ok: False`` with the error."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    try:
        done = subprocess.run(
            [sys.executable, str(HERE / "probe.py"), mode, case, str(out_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f}s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("PROBE-RESULT "):
            return json.loads(line.removeprefix("PROBE-RESULT "))
    return {"ok": False, "error": f"probe exited with {done.returncode}: {done.stderr.strip()[-500:]}"}


def run_against_export(
    benchmark: Any, mode: str, case: str, out_dir: Path, timeout: float = 900
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Once, timed by ``benchmark``: an export-only probe (the memory baseline), then a ``mode`` probe that
    times its own work and a paired torch.export. Both results; the test fails when either did."""
    results: dict[str, dict[str, Any]] = {}

    def once() -> None:
        results["export"] = run_probe("export", case, out_dir)
        results[mode] = run_probe(mode, case, out_dir, timeout=timeout)

    benchmark.pedantic(once, rounds=1, iterations=1)
    export, run = results["export"], results[mode]
    if not (export.get("ok") and run.get("ok")):
        pytest.fail(f"export: {export.get('error')}; {mode}: {run.get('error')}")
    return export, run


def versions() -> dict[str, str]:
    """Python, platform and package versions of this run."""
    found = {"python": platform.python_version(), "platform": platform.platform(), "cpus": str(os.cpu_count())}
    for package in ("torch", "transformers", "onnx", "onnxscript", "torch-ir", "pytest-benchmark"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    try:
        with open("/proc/cpuinfo") as f:
            found["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            found["memory"] = f"{int(f.readline().split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return found


@pytest.fixture(scope="session")
def bench_versions() -> dict[str, str]:
    return versions()
