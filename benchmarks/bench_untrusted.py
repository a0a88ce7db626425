"""What running and reading untrusted files costs.

- The worker process: verification of the GPT-2 test model (``tests/transformers_models.py``, saved and
  loaded back, so it is a file's IR) in this process (``isolation(isolate=False)``) and in the bounded
  worker (the default for a file), in the same run. The worker pays its start (a fresh Python with torch),
  the module sent over its socket, the weights copied into a sealed memory file, and every result sent back.
- Loading a hostile file: about 100 MB (``TORCH_IR_BENCH_FILE_MB``) of nodes whose every dimension is as
  expensive as the bounded grammar lets it be (longest text, deepest nesting), against a benign file of the
  same size (plain integer shapes), both read with ``load_ir``, then both through ``torch-ir opt`` (the
  default pipeline, the JSON written). The promise: within 10x.

The ratios go to ``benchmark.extra_info`` and are printed. Run with ``pytest benchmarks --benchmark-only -k
untrusted -s``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import best_seconds

from tests.transformers_models import build_causal_lm, causal_lm_inputs
from torch_ir import extract_ir, load_ir, verify_ir_with_state_dict
from torch_ir.runtime.worker import isolation

pytest.importorskip("transformers")

FILE_MB = float(os.environ.get("TORCH_IR_BENCH_FILE_MB", "100"))

HOSTILE_DIM = "(" * 30 + "s0" + "+1)" * 30
"""A dimension at the grammar's bounds: nested 31 deep, 61 operands, 92 characters."""


def test_worker_cost_verify_gpt2(benchmark: Any, tmp_path: Path) -> None:
    args, kwargs = causal_lm_inputs("meta")
    path = tmp_path / "gpt2.json"
    extract_ir(build_causal_lm("gpt2", "meta"), args, example_kwargs=kwargs).save(path)
    ir = load_ir(path)
    real = build_causal_lm("gpt2", "cpu")
    args, kwargs = causal_lm_inputs("cpu")

    def verify() -> None:
        ok, report = verify_ir_with_state_dict(
            ir=ir, state_dict=real.state_dict(), original_model=real, test_inputs=args, test_kwargs=kwargs
        )
        assert ok, str(report)

    def in_process() -> None:
        with isolation(isolate=False):
            verify()

    in_process()
    verify()  # warm both: imports, first-call caches
    here = best_seconds(in_process, 3)
    worker = best_seconds(verify, 3)
    benchmark.pedantic(verify, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {"nodes": len(ir.nodes), "in_process_s": here, "worker_s": worker, "worker_ratio": worker / here}
    )
    print(
        f"\nverify GPT-2 test model ({len(ir.nodes)} nodes): {here:.2f} s in process, {worker:.2f} s in the worker, "
        f"ratio {worker / here:.2f}x"
    )


def _document(dims: list[Any], target_bytes: int) -> dict[str, Any]:
    """A chain of relu nodes over inputs typed ``dims``, long enough to take about ``target_bytes``."""
    tensor = {"shape": dims, "dtype": "float32"}
    node_bytes = len(
        json.dumps(
            {
                "name": "n0000000",
                "op": "aten.relu.default",
                "args": ["%n0000000"],
                "attrs": {},
                "outputs": [{"name": "n0000000", "type": tensor}],
            }
        )
    )
    count = max(1, target_bytes // node_bytes)
    nodes = []
    previous = "%x"
    for i in range(count):
        name = f"n{i:07d}"
        nodes.append(
            {
                "name": name,
                "op": "aten.relu.default",
                "args": [previous],
                "attrs": {},
                "outputs": [{"name": name, "type": tensor}],
            }
        )
        previous = f"%{name}"
    graph = {"inputs": [{"name": "x", "type": tensor}], "nodes": nodes, "outputs": [previous]}
    return {
        "format": "torch-ir",
        "schema_version": 6,
        "module": {"weights": [], "state": [], "functions": [{"name": "forward", "graph": graph}]},
    }


def _hostile_and_benign(folder: Path) -> tuple[Path, Path]:
    """The hostile file of about ``FILE_MB`` and a benign one of the same size."""
    target = int(FILE_MB * (1 << 20))
    hostile = folder / "hostile.json"
    hostile.write_text(json.dumps(_document([HOSTILE_DIM, HOSTILE_DIM], target)))
    benign = folder / "benign.json"
    dims = [123456789, 987654321]
    text = json.dumps(_document(dims, target))
    scale = hostile.stat().st_size / len(text)
    benign.write_text(json.dumps(_document(dims, int(target * scale))))
    return hostile, benign


def test_loading_a_hostile_file_vs_a_benign_one(benchmark: Any, tmp_path: Path) -> None:
    hostile, benign = _hostile_and_benign(tmp_path)
    size = hostile.stat().st_size
    benign_s = best_seconds(lambda: load_ir(benign), 1)
    hostile_s = best_seconds(lambda: load_ir(hostile), 1)
    benchmark.pedantic(lambda: load_ir(hostile), rounds=1, iterations=1)
    ratio = hostile_s / benign_s
    benchmark.extra_info.update(
        {
            "hostile_mb": size / (1 << 20),
            "benign_mb": benign.stat().st_size / (1 << 20),
            "benign_s": benign_s,
            "hostile_s": hostile_s,
            "hostile_ratio": ratio,
        }
    )
    print(f"\nload {size / (1 << 20):.0f} MB: benign {benign_s:.2f} s, hostile {hostile_s:.2f} s, ratio {ratio:.2f}x")
    assert ratio < 10, f"loading the hostile file took {ratio:.1f}x the benign one"


def test_opt_on_a_hostile_file_vs_a_benign_one(benchmark: Any, tmp_path: Path) -> None:
    """``torch-ir opt`` (the default pipeline, JSON written) on both files, in this process; the hostile run
    is the one the benchmark times."""
    from torch_ir.cli import main

    hostile, benign = _hostile_and_benign(tmp_path)
    seconds: dict[str, float] = {}

    def opt(path: Path) -> None:
        start = time.perf_counter()
        assert main(["opt", str(path), "-o", str(tmp_path / f"{path.stem}.opt.json")]) == 0
        seconds[path.stem] = time.perf_counter() - start

    opt(benign)
    benchmark.pedantic(lambda: opt(hostile), rounds=1, iterations=1)
    size = hostile.stat().st_size / (1 << 20)
    ratio = seconds["hostile"] / seconds["benign"]
    benchmark.extra_info.update(
        {"hostile_mb": size, "benign_s": seconds["benign"], "hostile_s": seconds["hostile"], "hostile_ratio": ratio}
    )
    print(f"\nopt {size:.0f} MB: benign {seconds['benign']:.2f} s, hostile {seconds['hostile']:.2f} s, {ratio:.2f}x")
    assert ratio < 10, f"opt on the hostile file took {ratio:.1f}x the benign one"
