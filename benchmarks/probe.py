"""Run one measured operation in a fresh process and print its figures as one JSON line.

``python benchmarks/probe.py MODE CASE OUT_DIR`` with MODE ``export`` (torch.export alone), ``extract``
(torch-ir extract: export, convert, default pipeline, JSON write), ``trace`` (torch-ir's export stage
traced as the CPU with fake tensors, functionalization included), ``llm`` (``extract_llm``: the prefill +
decode program with a 4,096-position static cache, then torch.export of the same two graphs, paired) or
``functions`` (extract with functions: each distinct repeated block traced once; then torch.export of the
same model, paired), ``llm-functions`` (``extract_llm`` with functions, then one torch.export of the
model's forward, paired) or ``onnx`` (torch.onnx.export with
dynamo=True). Each mode first warms up on a tiny model, so one-time imports are not timed; peak RSS is
the process's ``ru_maxrss``, which includes building the model on meta.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).parent))

import torch
from cases import CASES

from torch_ir.frontends.model_specs import resolve_model
from torch_ir.ir.run_record import current_rss_bytes, peak_rss_bytes


def _tiny() -> Any:
    return resolve_model("zoo:gpt")


def _pipeline() -> tuple[Any, str]:
    """The default pipeline, or none where its passes are missing (recorded as such)."""
    try:
        from torch_ir.passes.manager import PassManager

        manager = PassManager("default")
        return manager, str(manager)
    except Exception as exc:
        return "none", f"none (default pipeline unavailable: {type(exc).__name__}: {exc})"


def _tiny_llama(layers: int) -> Any:
    """A Llama of ``layers`` tiny layers on meta, to warm up the LLM modes."""
    overrides = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2)
    return resolve_model("hf:llama", config_overrides={"num_hidden_layers": layers, **overrides}).model


def _paired_export(bundle: Any) -> float:
    """Seconds of one torch.export of the measured model, in the process that just measured torch-ir."""
    start = time.perf_counter()
    torch.export.export(bundle.model, bundle.args, kwargs=bundle.kwargs, strict=False)
    return time.perf_counter() - start


def export_only(bundle: Any) -> dict[str, Any]:
    torch.export.export(_tiny().model, _tiny().args, strict=False)
    before = current_rss_bytes()
    start = time.perf_counter()
    program = torch.export.export(bundle.model, bundle.args, kwargs=bundle.kwargs, strict=False)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_before": before, "fx_nodes": len(program.graph.nodes)}


def extract(bundle: Any, out_dir: Path, name: str) -> dict[str, Any]:
    """extract_ir (default pipeline) + save, timed; then torch.export alone in the same process, so the
    ratio is paired; peak RSS is taken before that second export."""
    from torch_ir import extract_ir

    tiny = _tiny()
    pipeline, pipeline_text = _pipeline()
    extract_ir(tiny.model, tiny.args, pipeline=pipeline).save(out_dir / "warmup.json")
    before = current_rss_bytes()
    path = out_dir / f"{name}.json"
    start = time.perf_counter()
    ir = extract_ir(bundle.model, bundle.args, example_kwargs=bundle.kwargs, pipeline=pipeline, name=name)
    write_start = time.perf_counter()
    ir.save(path)
    end = time.perf_counter()
    peak = peak_rss_bytes()
    stages = {s["stage"]: s["seconds"] for s in ir.stages.to_dict()}
    result = {
        "seconds": end - start,
        "peak_rss": peak,
        "rss_before": before,
        "nodes": len(ir.nodes),
        "weights": len(ir.weights),
        "export": stages.get("export"),
        "convert": stages.get("convert"),
        "pipeline": write_start - start - stages.get("export", 0.0) - stages.get("convert", 0.0),
        "write": end - write_start,
        "json_path": str(path),
        "json_bytes": path.stat().st_size,
        "pipeline_text": pipeline_text,
        "pass_log": [{"pass": p.get("pass"), "seconds": p.get("seconds")} for p in ir.pass_log],
    }
    del ir
    result["paired_export"] = _paired_export(bundle)
    return result


def extract_functions(bundle: Any, out_dir: Path, name: str) -> dict[str, Any]:
    """``extract_ir(..., functions=True)`` (export with blocks as calls, each distinct block exported once,
    convert, the functions pipeline) + save, timed; then torch.export alone in the same process (paired)."""
    from torch_ir import extract_ir

    tiny = _tiny()
    extract_ir(tiny.model, tiny.args, functions=True).save(out_dir / "warmup.json")
    before = current_rss_bytes()
    path = out_dir / f"{name}.functions.json"
    start = time.perf_counter()
    ir = extract_ir(bundle.model, bundle.args, example_kwargs=bundle.kwargs, functions=True, name=name)
    write_start = time.perf_counter()
    ir.save(path)
    end = time.perf_counter()
    peak = peak_rss_bytes()
    stages = {s["stage"]: s["seconds"] for s in ir.stages.to_dict()}
    result = {
        "seconds": end - start,
        "peak_rss": peak,
        "rss_before": before,
        "nodes": sum(len(f.graph) for f in ir.functions.values()),
        "functions": {n: len(f.graph) for n, f in ir.functions.items()},
        "calls": sum(1 for n in ir.graph.nodes if n.op_type == "func.call"),
        "stages": stages,
        "pipeline": write_start - start - sum(stages.values()),
        "write": end - write_start,
        "json_bytes": path.stat().st_size,
        "pass_log": [{"pass": p.get("pass"), "seconds": p.get("seconds")} for p in ir.pass_log],
    }
    del ir
    result["paired_export"] = _paired_export(bundle)
    return result


def trace_as_cpu(bundle: Any) -> dict[str, Any]:
    """``export_program(device="cpu")``: the model on meta presented as CPU fake tensors; then torch.export
    on meta in the same process (paired). Peak RSS is taken before that second export."""
    from torch_ir.frontends.torch_export import export_program

    tiny = _tiny()
    export_program(tiny.model, tiny.args, device="cpu")
    before = current_rss_bytes()
    start = time.perf_counter()
    program = export_program(bundle.model, bundle.args, example_kwargs=bundle.kwargs, device="cpu")
    seconds = time.perf_counter() - start
    peak = peak_rss_bytes()
    nodes = len(program.graph.nodes)
    del program
    return {
        "seconds": seconds,
        "peak_rss": peak,
        "rss_before": before,
        "fx_nodes": nodes,
        "paired_export": _paired_export(bundle),
    }


LLM_CACHE_LEN = 4096


def llm_program(bundle: Any) -> dict[str, Any]:
    """``extract_llm`` (two traces as the CPU, functionalization, convert, default pipeline), then torch.export
    of the same prefill and decode graphs on meta in the same process (paired). Peak RSS before the exports."""
    from torch_ir import extract_llm
    from torch_ir.frontends.llm import build_cache_module

    extract_llm(_tiny_llama(1), max_cache_len=16)
    before = current_rss_bytes()
    start = time.perf_counter()
    ir = extract_llm(bundle.model, max_cache_len=LLM_CACHE_LEN)
    seconds = time.perf_counter() - start
    peak = peak_rss_bytes()
    nodes = {name: len(graph) for name, graph in ir.entries.items()}
    del ir
    wrapper = build_cache_module(bundle.model, 1, LLM_CACHE_LEN, "meta")
    ids, positions = torch.zeros(1, 8, dtype=torch.long, device="meta"), torch.arange(8, device="meta")
    seq = torch.export.Dim("seq", min=2, max=LLM_CACHE_LEN)
    start = time.perf_counter()
    torch.export.export(
        wrapper,
        (),
        {"input_ids": ids, "cache_position": positions},
        dynamic_shapes={"input_ids": {1: seq}, "cache_position": {0: seq}},
        strict=False,
    )
    torch.export.export(wrapper, (), {"input_ids": ids[:, :1], "cache_position": positions[:1]}, strict=False)
    return {
        "seconds": seconds,
        "peak_rss": peak,
        "rss_before": before,
        "nodes": nodes,
        "paired_export": time.perf_counter() - start,
    }


def llm_functions(bundle: Any) -> dict[str, Any]:
    """``extract_llm(..., functions=True)`` (each decoder layer traced once per entry, writes functionalized
    in torch-ir's IR, convert, the functions pipeline), then one torch.export of the model's plain forward on
    meta in the same process (paired: the goal is at most 1.5x of it)."""
    from torch_ir import extract_llm

    extract_llm(_tiny_llama(2), max_cache_len=16, functions=True)
    before = current_rss_bytes()
    start = time.perf_counter()
    ir = extract_llm(bundle.model, max_cache_len=LLM_CACHE_LEN, functions=True)
    seconds = time.perf_counter() - start
    peak = peak_rss_bytes()
    result = {
        "seconds": seconds,
        "peak_rss": peak,
        "rss_before": before,
        "nodes": {name: len(f.graph) for name, f in ir.functions.items()},
        "calls": sum(1 for n in ir.entry("decode").nodes if n.op_type == "func.call"),
    }
    del ir
    result["paired_export"] = _paired_export(bundle)
    return result


def onnx(bundle: Any) -> dict[str, Any]:
    tiny = _tiny()
    torch.onnx.export(tiny.model, tiny.args, dynamo=True, optimize=False, verbose=False)
    before = current_rss_bytes()
    start = time.perf_counter()
    program = torch.onnx.export(
        bundle.model, bundle.args, kwargs=bundle.kwargs, dynamo=True, optimize=False, verbose=False
    )
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rss_before": before,
        "onnx_nodes": len(program.model.graph),
        "note": "optimize=False (the ONNX optimizer needs tensor values, which meta tensors do not have)",
    }


def main() -> None:
    mode, case_name, out_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    case = CASES[case_name]
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = resolve_model(case.spec, config_overrides=case.overrides)
    try:
        if mode == "export":
            result = export_only(bundle)
        elif mode == "extract":
            result = extract(bundle, out_dir, case_name)
        elif mode == "functions":
            result = extract_functions(bundle, out_dir, case_name)
        elif mode == "llm":
            result = llm_program(bundle)
        elif mode == "llm-functions":
            result = llm_functions(bundle)
        elif mode == "trace":
            result = trace_as_cpu(bundle)
        elif mode == "onnx":
            result = onnx(bundle)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
        result["ok"] = True
    except Exception as exc:
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
            "traceback": traceback.format_exc()[-2000:],
        }
    result.setdefault("peak_rss", peak_rss_bytes())
    print("PROBE-RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
