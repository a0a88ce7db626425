"""Pipeline text and files: parsing, typing of options, round trips, and every kind of bad input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest

from torch_ir import Pass, PassResult, PipelineSpecError, register_pass
from torch_ir.errors import PassError
from torch_ir.passes.pipeline import DEFAULT_PIPELINE, parse_pipeline, resolve_pipeline
from torch_ir.passes.registry import get_pass, unregister_pass


@dataclass(frozen=True)
class OptionsPass(Pass):
    """A pass with one option of every supported type."""

    name: ClassVar[str] = "test-options"
    count: int = 1
    ratio: float = 0.5
    flag: bool = False
    label: str = "x"
    names: tuple[str, ...] = ()
    limit: int | None = None

    def run(self, graph, ctx):
        return PassResult(graph, False)


@pytest.fixture(autouse=True, scope="module")
def _options_pass():
    register_pass(OptionsPass)
    yield
    unregister_pass("test-options")


def test_text_round_trip_and_typed_options():
    text = "annotate-shapes,hoist-weights{min-numel=16},dedup-weights,eliminate-dead-nodes"
    pipeline = parse_pipeline(text)
    assert str(pipeline) == text
    assert pipeline.passes[1].min_numel == 16
    p = parse_pipeline('test-options{count=3, ratio=2, flag=true, label="a b", names=[q,k], limit=none}').passes[0]
    assert (p.count, p.ratio, p.flag, p.label, p.names, p.limit) == (3, 2.0, True, "a b", ("q", "k"), None)
    assert parse_pipeline(str(parse_pipeline(f'{p.name}{{label="a b",names=[q,k],limit=4}}'))).passes[0].limit == 4
    assert parse_pipeline("test-options{min_numel=1}".replace("min_numel", "count")).passes[0].count == 1


def test_alias_and_named_pipelines():
    assert get_pass("dce").name == "eliminate-dead-nodes"
    assert str(resolve_pipeline("default")) == DEFAULT_PIPELINE
    assert len(resolve_pipeline("none")) == 0 and len(resolve_pipeline(None)) == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("hoist-weight", "did you mean 'hoist-weights'"),
        ("hoist-weights{min-numl=3}", "no option 'min-numl'.*did you mean 'min-numel'"),
        ("hoist-weights{min-numel=abc}", "expects int"),
        ("test-options{flag=maybe}", "expects bool"),
        ("hoist-weights{min-numel=3", "unbalanced"),
        ("cse,,dce", "expected a pass name"),
        ("cse,", "empty pass name"),
        ("cse}", "unbalanced"),
        ("hoist-weights{min-numel=}", "empty option value"),
    ],
)
def test_bad_text(text, message):
    with pytest.raises(PipelineSpecError, match=message):
        parse_pipeline(text)


def test_files_say_the_same(tmp_path):
    toml = tmp_path / "p.toml"
    toml.write_text(
        '[[passes]]\nname = "canonicalize"\n[[passes]]\nname = "hoist-weights"\nmin-numel = 16\n'
        '[instrumentation]\ntiming = true\nsteps = 3\nprint-ir-after = "cse"\n'
    )
    yaml = tmp_path / "p.yaml"
    yaml.write_text(
        "passes:\n  - canonicalize\n  - name: hoist-weights\n    min-numel: 16\ntiming: true\nsteps: 3\n"
        "print-ir-after: [cse]\n"
    )
    js = tmp_path / "p.json"
    js.write_text(
        json.dumps(
            {
                "pipeline": "canonicalize,hoist-weights{min-numel=16}",
                "instrumentation": {"timing": True, "steps": 3, "print_ir_after": ["cse"]},
            }
        )
    )
    results = [resolve_pipeline(p) for p in (toml, str(yaml), str(js))]
    for r in results:
        assert str(r) == "canonicalize,hoist-weights{min-numel=16}"
        assert r.settings == {"timing": True, "steps": 3, "print-ir-after": ("cse",)}


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.toml", "[[passes]\nname=", "not valid TOML"),
        ("bad.yaml", "passes: [a, b\n", "not valid YAML"),
        ("bad.json", '{"passes": [', "not valid JSON"),
        ("unknown.toml", 'pases = ["cse"]', "unknown key 'pases'.*did you mean 'passes'"),
        ("plugin.yaml", "plugins: [no_such_module_xyz]\npasses: [cse]\n", "plugin 'no_such_module_xyz' could not"),
        ("nameless.json", '{"passes": [{"min-numel": 3}]}', "needs a 'name'"),
        ("setting.json", '{"passes": ["cse"], "instrumentation": {"stepz": 2}}', "did you mean 'steps'"),
    ],
)
def test_bad_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PipelineSpecError, match=message):
        resolve_pipeline(str(path))


def test_missing_file_and_duplicate_registration(tmp_path):
    with pytest.raises(PipelineSpecError, match="no such pipeline file"):
        resolve_pipeline(str(tmp_path / "nope.toml"))

    @dataclass(frozen=True)
    class Clash(Pass):
        """Clashes with cse."""

        name: ClassVar[str] = "cse"

    with pytest.raises(PassError, match="already registered"):
        register_pass(Clash)


def test_ready_pipeline_files():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "pipelines"
    for path in sorted(root.iterdir()):
        assert len(resolve_pipeline(path)) >= 2, path
