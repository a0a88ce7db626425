"""benchmarks/write_results.py renders RESULTS.md from a pytest-benchmark JSON file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "write_results.py"


def _module():
    spec = importlib.util.spec_from_file_location("write_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench(case, layers, export, extract, paired, onnx_ok=True):
    return {
        "group": "extract",
        "name": f"test_extract[{case}]",
        "stats": {"mean": extract, "rounds": 1},
        "extra_info": {
            "case": case,
            "layers": layers,
            "ratio": extract / paired,
            "rss_delta_mb": 12.0,
            "json_load_seconds": 0.4,
            "opt_seconds": 1.5,
            "opt_how": "torch-ir opt (command wall time)",
            "versions": {"torch": "2.13.0", "cpu": "Test CPU", "cpus": "2", "python": "3.11.7"},
            "export": {"ok": True, "seconds": export, "peak_rss": 450 * 2**20},
            "extract": {
                "ok": True,
                "seconds": extract,
                "paired_export": paired,
                "export": export,
                "nodes": 5000,
                "convert": 0.7,
                "pipeline": 0.3,
                "write": 0.4,
                "peak_rss": 462 * 2**20,
                "json_bytes": 6 * 2**20,
                "pipeline_text": "cse,dce",
            },
            "onnx": {"ok": True, "seconds": 40.0, "note": "optimize=False"}
            if onnx_ok
            else {"ok": False, "error": "RuntimeError: meta"},
            **({"vs_onnx": extract / 40.0} if onnx_ok else {}),
        },
    }


def test_render_from_fake_json(tmp_path):
    doc = {
        "datetime": "2026-01-01T00:00:00",
        "machine_info": {"python_version": "3.11.7"},
        "benchmarks": [
            _bench("llama-70b-8L", 8, 2.0, 2.2, 2.0),
            _bench("llama-70b-80L", 80, 20.0, 21.0, 20.0, onnx_ok=False),
            {
                "group": "pipeline",
                "name": "test_cse",
                "fullname": "bench_pipeline.py::test_cse",
                "stats": {"mean": 0.01, "rounds": 5},
                "extra_info": {},
            },
        ],
    }
    source = tmp_path / "results.json"
    source.write_text(json.dumps(doc))
    target = tmp_path / "RESULTS.md"
    assert _module().main([str(source), str(target)]) == 0
    text = target.read_text()
    assert "Test CPU, 2 cores" in text and "torch 2.13.0" in text
    assert "| llama-70b-80L | 5000 | 20.00 | 21.00 | 1.050x | 1.050x (20.00) |" in text
    assert "- [x] extract at most 1.10x torch.export on llama-70b-80L: 1.050x by stage" in text
    assert "8 -> 80 layers (70B shape) takes 10.0x the time" in text
    assert "ONNX exporter failed on llama-70b-80L: RuntimeError: meta" in text
    assert "bench_pipeline.py::test_cse" in text
