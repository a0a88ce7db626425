"""Pipeline text and files: parsing, typing of options, round trips, and every kind of bad input."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from torch_ir import Pass, PassResult, PipelineSpecError, register_pass
from torch_ir.errors import PassError
from torch_ir.passes.pipeline import (
    DEFAULT_PIPELINE,
    coerce,
    format_value,
    parse_pipeline,
    resolve_pipeline,
    split_pipeline,
)
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


NAN = float("nan")


@pytest.mark.parametrize(
    "value, hint, expected",
    [
        ("  42 ", int, 42),
        ("+7", int, 7),
        ("-3", int, -3),
        (5, int, 5),
        ("yes", bool, True),
        (" On ", bool, True),
        ("1", bool, True),
        ("0", bool, False),
        ("off", bool, False),
        ("NO", bool, False),
        (False, bool, False),
        (2, float, 2.0),
        ("1e-3", float, 0.001),
        (" -inf ", float, float("-inf")),
        ("  x ", str, "x"),
        (' "a,b" ', str, "a,b"),
        ('"none"', str, "none"),
        ("none", int | None, None),
        ("NULL", int | None, None),
        (None, int | None, None),
        ("5", int | None, 5),
        ("none", int | str, "none"),  # no None among the types: the text is a string
        ("x", int | str, "x"),
        ("[1, 2,3]", tuple[int, ...], (1, 2, 3)),
        ("1,2", tuple[int, ...], (1, 2)),
        ("", tuple[int, ...], ()),
        ("[ ]", tuple[int, ...], ()),
        ([1, "2"], tuple[int, ...], (1, 2)),
        ("a, b", list[str], ["a", "b"]),  # a list of any length, like tuple[str, ...]
        ("1,x", tuple[int, str], (1, "x")),
        ({"any": 1}, Any, {"any": 1}),
    ],
)
def test_option_values_take_their_declared_type(value: Any, hint: Any, expected: Any) -> None:
    result = coerce(value, hint)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "value, hint, message",
    [
        (True, int, "not an integer"),
        ("4.0", int, "not an integer"),
        ("4 2", int, "not an integer"),
        ("maybe", bool, "not a boolean"),
        (1, bool, "not a boolean"),
        (True, float, "not a number"),
        ("nanx", float, "not a number"),
        ("one", float, "not a number"),
        ('"unterminated', str, "malformed quoted string"),
        (3, str, "not a string"),
        ("x", int | None, "not an integer"),
        ("1", tuple[int, str], "expected 2 items, got 1"),
        (3, tuple[int, ...], "not a list"),
        ("1", dict[str, int], "options of type .* are not supported"),
    ],
)
def test_option_values_of_the_wrong_type_say_what_was_expected(value: Any, hint: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        coerce(value, hint)


def test_nan_is_read_only_from_its_name() -> None:
    assert math.isnan(coerce(" NaN ", float)) and math.isnan(coerce(NAN, float))
    with pytest.raises(ValueError, match="not a number"):
        coerce("+nan", float)


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "none"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (1.5, "1.5"),
        ("abc/d:e@f.g-h_i", "abc/d:e@f.g-h_i"),
        ("a b", '"a b"'),
        ("a,b", '"a,b"'),
        ("none", '"none"'),
        ("True", '"True"'),
        ("", '""'),
        (("q", "k v"), '[q,"k v"]'),
    ],
)
def test_option_values_print_as_text_that_reads_back(value: Any, text: str) -> None:
    assert format_value(value) == text
    hint = {type(None): int | None, tuple: tuple[str, ...]}.get(type(value), type(value))
    assert coerce(text, hint) == value


def test_option_values_keep_commas_and_braces_inside_quotes_and_brackets() -> None:
    assert split_pipeline('p{a="x,}y", b=[1,2], c= v }, q') == [
        ("p", {"a": '"x,}y"', "b": "[1,2]", "c": "v"}),
        ("q", {}),
    ]
    for text, message in [
        ('p{a="x}', "unterminated string"),
        ("p{a=[1,2}", "unbalanced '\\['"),
        ("p{a=b{c}", "unexpected '\\{' in an option value"),
        ("p{a=1,a=2}", "option 'a' given twice"),
        ('p{a="x" b=2}', "expected ',' or '}'"),
        ("p{=1}", "expected an option name"),
        ("p{a 1}", "expected '=' after option 'a'"),
        ("p q", "expected ',' between passes"),
    ]:
        with pytest.raises(PipelineSpecError, match=message):
            split_pipeline(text)
