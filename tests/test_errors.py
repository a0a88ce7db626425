"""Every public entry point, fed bad input, raises the documented TorchIRError subclass naming the culprit.

docs/errors.md lists every subclass; a test checks the table is complete.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import torch_ir.errors as errors_module
from tests.models import get_model
from torch_ir import (
    ExportError,
    InterpreterError,
    IRError,
    ModelSpecError,
    PassError,
    PipelineSpecError,
    SerializationError,
    TextParseError,
    TorchIRError,
    VerificationError,
    WeightError,
    extract_ir,
    load_ir,
    parse_graph,
    register_op,
    verify_ir,
    verify_ir_with_state_dict,
)
from torch_ir.frontends.inputs import parse_dynamic_spec, parse_input_spec
from torch_ir.frontends.model_specs import resolve_model
from torch_ir.ir import IR
from torch_ir.passes.manager import run_pipeline
from torch_ir.passes.pipeline import load_pipeline_file, parse_pipeline
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.weights import export_weights

ROOT = Path(__file__).resolve().parents[1]
SMALL = "graph(%x: f32[2]) {\n  %y = aten.relu.default(%x) : (f32[2]) -> f32[2]\n  return %y\n}"


def _two_tower() -> tuple[nn.Module, IR]:
    case = get_model("two_tower")
    model = case.build_real()
    args, _ = case.inputs("meta")
    return model, extract_ir(case.build_meta(), args)


def _bad_file(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def _ir_with_weight_renamed(tmp: Path) -> Path:
    _, ir = _two_tower()
    path = tmp / "ir.json"
    ir.save(path)
    return path


class _Boom(Exception):
    pass


def _cases(tmp: Path) -> list[tuple[str, Callable[[], object], type[TorchIRError], list[str]]]:
    model, ir = _two_tower()
    x = (torch.randn(2, 8), torch.randn(2, 12))
    state = model.state_dict()
    return [
        ("extract_ir: not a module", lambda: extract_ir("model", ()), ExportError, ["str"]),
        ("extract_ir: wrong inputs", lambda: extract_ir(model, (torch.randn(2, 8),)), ExportError, ["'b'"]),
        (
            "load_ir: truncated",
            lambda: load_ir(_bad_file(tmp, "t.json", '{"schema_version": 1, "gra')),
            SerializationError,
            ["t.json", "line 1"],
        ),
        (
            "load_ir: future version",
            lambda: load_ir(_bad_file(tmp, "f.json", '{"schema_version": 99, "graph": {}}')),
            SerializationError,
            ["f.json", "schema_version", "99"],
        ),
        ("IR.save: unwritable", lambda: ir.save(tmp / "t.json" / "x.json"), SerializationError, ["x.json"]),
        (
            "parse_graph: undefined value",
            lambda: parse_graph(SMALL.replace("relu.default(%x)", "relu.default(%q)")),
            TextParseError,
            ["%q", "line 2"],
        ),
        ("Graph.erase: still used", lambda: ir.graph.erase(ir.nodes[0]), IRError, [ir.nodes[0].name]),
        (
            "run_pipeline: unknown pass",
            lambda: run_pipeline(ir, "canonicalise"),
            PipelineSpecError,
            ["canonicalise", "canonicalize"],
        ),
        (
            "parse_pipeline: bad option type",
            lambda: parse_pipeline("hoist-weights{min-numel=lots}"),
            PipelineSpecError,
            ["min-numel", "lots"],
        ),
        (
            "load_pipeline_file: bad TOML",
            lambda: load_pipeline_file(_bad_file(tmp, "p.toml", "passes = [")),
            PipelineSpecError,
            ["p.toml", "TOML"],
        ),
        (
            "load_pipeline_file: missing plugin",
            lambda: load_pipeline_file(_bad_file(tmp, "q.yaml", "plugins: [no_such_plugin_pkg]\npasses: [cse]\n")),
            PipelineSpecError,
            ["no_such_plugin_pkg"],
        ),
        (
            "verify_ir_with_state_dict: wrong shape",
            lambda: verify_ir_with_state_dict(
                ir=ir, state_dict={**state, "left.weight": torch.zeros(3, 3)}, original_model=model, test_inputs=x
            ),
            WeightError,
            ["left.weight", "[3, 3]"],
        ),
        ("verify_ir: wrong number of inputs", lambda: verify_ir(ir, model, (x[0],)), TorchIRError, ["input"]),
        (
            "verify_ir_with_state_dict: missing parameter",
            lambda: verify_ir_with_state_dict(
                ir=ir,
                state_dict={k: v for k, v in state.items() if k != "head.bias"},
                original_model=model,
                test_inputs=x,
            ),
            WeightError,
            ["head.bias", "fill_missing_from_model"],
        ),
        (
            "Interpreter: meta weights",
            lambda: Interpreter(ir, {k: torch.empty_like(v, device="meta") for k, v in state.items()}),
            WeightError,
            ["meta device"],
        ),
        (
            "Interpreter: refused op",
            lambda: Interpreter(parse_graph("graph() {\n  %s = aten.seed.default() : () -> i64[]\n  return %s\n}")),
            InterpreterError,
            ["node s", "aten.seed.default", "allow_side_effects"],
        ),
        (
            "Interpreter: missing weight",
            lambda: Interpreter(ir, {k: v for k, v in state.items() if k != "head.bias"}).run(*x),
            WeightError,
            ["head.bias"],
        ),
        (
            "Interpreter: wrong input shape",
            lambda: Interpreter(ir, state).run(torch.randn(2, 9), x[1]),
            InterpreterError,
            ["input a", "[2, 9]"],
        ),
        (
            "export_weights: corrupt safetensors",
            lambda: export_weights(ir, _bad_file(tmp, "w.safetensors", "garbage"), tmp / "out.safetensors"),
            WeightError,
            ["w.safetensors"],
        ),
        (
            "register_op: bad name",
            lambda: register_op("not an op name", kernel=lambda x: x),
            TorchIRError,
            ["not an op name"],
        ),
        ("resolve_model: unknown zoo name", lambda: resolve_model("zoo:gtp"), ModelSpecError, ["gtp", "zoo:gpt"]),
        (
            "resolve_model: no such module",
            lambda: resolve_model("no_such_pkg.models:make"),
            ModelSpecError,
            ["no_such_pkg.models"],
        ),
        ("parse_input_spec: malformed", lambda: parse_input_spec("1xAx3:int64"), ModelSpecError, ["1xAx3"]),
        (
            "parse_dynamic_spec: min above max",
            lambda: parse_dynamic_spec("0=batch:9..2"),
            ModelSpecError,
            ["0=batch:9..2"],
        ),
        ("IR.verify: broken graph", lambda: _broken_ir().verify(), VerificationError, ["%y", "no type"]),
    ]


def _broken_ir() -> IR:
    graph = parse_graph(SMALL)
    graph.value("y").type = None
    return IR(graph)


def test_every_entry_point_names_the_offending_thing(tmp_path: Path) -> None:
    failures = []
    for name, call, error, needles in _cases(tmp_path):
        try:
            call()
        except error as exc:
            message = str(exc)
            missing = [n for n in needles if n not in message]
            if missing:
                failures.append(f"{name}: message lacks {missing}: {message}")
        except Exception as exc:  # the point of the test: nothing but the documented error
            failures.append(f"{name}: raised {type(exc).__name__}, not {error.__name__}: {exc}")
        else:
            failures.append(f"{name}: raised nothing")
    assert not failures, "\n".join(failures)


def test_a_failing_pass_is_a_pass_error_naming_it_and_those_before() -> None:
    from dataclasses import dataclass
    from typing import ClassVar

    from torch_ir.passes.base import Pass
    from torch_ir.passes.manager import PassManager

    @dataclass(frozen=True)
    class Exploding(Pass):
        """Raises."""

        name: ClassVar[str] = "exploding-for-errors-test"

        def run(self, graph, ctx):  # type: ignore[no-untyped-def]
            raise _Boom("kaboom")

    _, ir = _two_tower()
    with pytest.raises(PassError) as info:
        PassManager([parse_pipeline("canonicalize,cse").passes[0], Exploding()]).run(ir)
    assert "exploding-for-errors-test" in str(info.value) and "canonicalize" in str(info.value)


def test_errors_page_lists_every_error_class() -> None:
    page = (ROOT / "docs" / "errors.md").read_text()
    classes = [n for n, c in inspect.getmembers(errors_module, inspect.isclass) if issubclass(c, TorchIRError)]
    assert len(classes) >= 11
    for name in classes:
        assert re.search(rf"^\| `{name}` \|", page, flags=re.M), f"docs/errors.md has no row for {name}"


def test_cli_prints_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from torch_ir.cli import main

    bad = _bad_file(tmp_path, "bad.json", json.dumps({"schema_version": 1}))
    assert main(["opt", str(bad), "-p", "cse", "-o", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "Traceback" not in err
    assert main(["extract", "zoo:nope", "-o", str(tmp_path / "x.json")]) == 2
    assert "nope" in capsys.readouterr().err
