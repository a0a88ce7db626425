"""Extraction on meta: torch.export alone vs torch-ir extract (default pipeline + JSON write), peak RSS of
each, JSON size and load time, ``torch-ir opt`` on the saved IR, and the ONNX exporter as a peer.

Each operation runs in a fresh process (``probe.py``), export and extract back to back, so the ratio is
from one run on one machine. ``make bench`` renders the figures into RESULTS.md (write_results.py).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cases import CASES
from conftest import run_probe

from torch_ir import load_ir


def _has_transformers() -> bool:
    return importlib.util.find_spec("transformers") is not None


def _opt_seconds(json_path: str, out: Path) -> dict[str, object]:
    """``torch-ir opt`` on the saved IR (wall time of the command), or the default pipeline in-process."""
    script = Path(sys.executable).with_name("torch-ir")
    if importlib.util.find_spec("torch_ir.cli.opt") is not None and script.exists():
        start = time.perf_counter()
        done = subprocess.run([str(script), "opt", json_path, "-o", str(out)], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode == 0:
            return {"opt_seconds": seconds, "opt_how": "torch-ir opt (command wall time)"}
        return {"opt_error": done.stderr.strip()[-300:]}
    try:
        from torch_ir.passes.manager import PassManager

        ir = load_ir(json_path)
        start = time.perf_counter()
        PassManager("default").run(ir)
        return {"opt_seconds": time.perf_counter() - start, "opt_how": "default pipeline in-process"}
    except Exception as exc:
        return {"opt_error": f"{type(exc).__name__}: {exc}"}


@pytest.mark.parametrize("name", list(CASES))
def test_extract(name, benchmark, tmp_path, bench_versions):
    case = CASES[name]
    if case.needs_transformers and not _has_transformers():
        pytest.skip("transformers is not installed")
    benchmark.group = "extract"
    info = benchmark.extra_info
    info.update(case=name, spec=case.spec, overrides=case.overrides, layers=case.layers, versions=bench_versions)
    exports: list[dict] = []
    extracts: list[dict] = []

    def once() -> None:
        exports.append(run_probe("export", name, tmp_path))
        extracts.append(run_probe("extract", name, tmp_path))

    benchmark.pedantic(once, rounds=case.rounds, iterations=1)
    export = min(exports, key=lambda r: r.get("seconds", 1e9))
    extract = min(extracts, key=lambda r: r.get("seconds", 1e9))
    info["export"], info["extract"] = export, {k: v for k, v in extract.items() if k != "traceback"}
    if not (export.get("ok") and extract.get("ok")):
        pytest.fail(f"export: {export.get('error')}; extract: {extract.get('error')}")
    info["ratio"] = extract["seconds"] / extract["paired_export"]
    info["ratio_separate"] = extract["seconds"] / export["seconds"]
    info["rss_delta_mb"] = (extract["peak_rss"] - export["peak_rss"]) / 2**20

    path = extract["json_path"]
    loads = []
    for _ in range(3 if extract["json_bytes"] < 20 * 2**20 else 2):
        start = time.perf_counter()
        load_ir(path)
        loads.append(time.perf_counter() - start)
    info["json_load_seconds"] = min(loads)
    info.update(_opt_seconds(path, tmp_path / "opt.json"))

    onnx = run_probe("onnx", name, tmp_path)
    info["onnx"] = {k: v for k, v in onnx.items() if k != "traceback"}
    if onnx.get("ok"):
        info["vs_onnx"] = extract["seconds"] / onnx["seconds"]
    shutil.rmtree(tmp_path, ignore_errors=True)
