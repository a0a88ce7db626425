"""Pipeline text and files: parsing, typing of options, round trips, and every kind of bad input."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from torch_ir import Graph, Pass, PassContext, PassResult, PipelineSpecError, register_pass
from torch_ir.errors import PassError
from torch_ir.passes.pipeline import (
    DEFAULT_PIPELINE,
    coerce,
    format_value,
    parse_pipeline,
    pipeline_from_document,
    resolve_pipeline,
    split_pipeline,
)
from torch_ir.passes.registry import get_pass, load_plugins, unregister_pass


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


def test_pipeline_documents_in_each_form_they_may_take() -> None:
    short = pipeline_from_document(["canonicalize", "hoist-weights{min-numel=4}"], "f.toml")
    assert (str(short), short.plugins, short.settings, short.source) == (
        "canonicalize,hoist-weights{min-numel=4}",
        (),
        {},
        "f.toml",
    )
    full = pipeline_from_document(
        {
            "passes": [
                {"name": "hoist-weights", "options": {"min-numel": 2}},
                {"name": "hoist-weights", "min_numel": 3},
            ],
            "plugins": "json",  # one module name alone
            "instrumentation": {
                "print-ir-before": "cse",
                "print_ir_after": ["dce", "cse"],
                "dump-dir": "d",
                "reproducer": "r.json",
                "verify-each": "yes",
                "steps": "2",
            },
            "timing": True,  # a setting outside the instrumentation table
        },
        "f.toml",
    )
    assert str(full) == "hoist-weights{min-numel=2},hoist-weights{min-numel=3}" and full.plugins == ("json",)
    assert full.settings == {
        "print-ir-before": ("cse",),
        "print-ir-after": ("dce", "cse"),
        "dump-dir": "d",
        "reproducer": "r.json",
        "verify-each": True,
        "steps": 2,
        "timing": True,
    }
    text = pipeline_from_document({"pipeline": "cse", "timing": False})
    assert (str(text), text.settings, text.source) == ("cse", {"timing": False}, "<document>")
    assert len(pipeline_from_document({}, "f.toml")) == 0


KNOWN = (
    "passes, pipeline, plugins, instrumentation, verify-each, print-ir-before, print-ir-after, dump-dir, timing, "
    "steps, reproducer"
)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("text", "a pipeline file holds a table/mapping with 'passes', got str"),
        ({"pases": []}, f"unknown key 'pases'; did you mean 'passes'? (known: {KNOWN})"),
        ({"zzz": 1}, f"unknown key 'zzz' (known: {KNOWN})"),
        ({"plugins": [1]}, "'plugins' must be a list of module names"),
        ({"plugins": 3}, "'plugins' must be a list of module names"),
        ({"pipeline": "cse", "passes": []}, "give either 'pipeline' (text) or 'passes' (a list), not both"),
        ({"pipeline": 3}, "'pipeline' must be pipeline text such as \"canonicalize,cse\""),
        ({"passes": "cse"}, "'passes' must be a list"),
        ({"passes": [{"min-numel": 1}]}, "passes[0]: each pass needs a 'name'"),
        ({"passes": [{"name": "cse", "options": [1]}]}, "passes[0]: 'options' must be a table of options, got [1]"),
        ({"passes": ["cse", 3]}, "passes[1]: expected a pass name or a table with 'name', got 3"),
        (
            {"passes": ["cse", "hoist-weights{min-numel=x}"]},
            "passes[1]: option 'min-numel' of pass 'hoist-weights' expects int, got 'x' (not an integer)",
        ),
        ({"instrumentation": [1]}, "'instrumentation' must be a table of settings, got [1]"),
        ({"instrumentation": {"stepz": 1}}, "unknown instrumentation setting 'stepz'; did you mean 'steps'?"),
        ({"instrumentation": {"zzz": 1}}, "unknown instrumentation setting 'zzz'"),
        ({"steps": "many"}, "setting 'steps' expects int: not an integer"),
    ],
)
def test_a_bad_pipeline_document_says_what_and_where(doc: Any, message: str) -> None:
    with pytest.raises(PipelineSpecError) as info:
        pipeline_from_document(doc, "f.toml")
    assert str(info.value) == f"f.toml: {message}"


def test_a_plugin_in_the_current_directory_is_found_and_a_broken_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tir_plugin_here.py").write_text(
        "from dataclasses import dataclass\nfrom typing import ClassVar\nfrom torch_ir import Pass, PassResult,"
        " register_pass\n\n\n@register_pass\n@dataclass(frozen=True)\nclass Here(Pass):\n"
        '    name: ClassVar[str] = "test-plugin-here"\n\n    def run(self, graph, ctx):\n'
        "        return PassResult(graph, False)\n"
    )
    (tmp_path / "tir_plugin_broken.py").write_text("import tir_no_such_dependency\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        load_plugins(["tir_plugin_here"])  # not on sys.path: looked up from the current directory
        assert get_pass("test-plugin-here").__module__ == "tir_plugin_here" and str(tmp_path) in sys.path
        with pytest.raises(
            PipelineSpecError,
            match=r"^plugin 'tir_plugin_broken' could not be imported: ModuleNotFoundError: No module named "
            r"'tir_no_such_dependency'\. Check that the module is on PYTHONPATH",
        ):
            load_plugins(["tir_plugin_broken"])
    finally:
        unregister_pass("test-plugin-here")
        for name in ("tir_plugin_here", "tir_plugin_broken"):
            sys.modules.pop(name, None)


@dataclass(frozen=True)
class Advertised(Pass):
    """A pass a package advertises under the torch_ir.passes entry points."""

    name: ClassVar[str] = "test-advertised"
    aliases: ClassVar[tuple[str, ...]] = ("test-adv",)

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        return PassResult(graph, False)


class _EntryPoint:
    def __init__(self, name: str, value: Any) -> None:
        self.name, self.value, self._value = name, "pkg.module:Thing", value

    def load(self) -> Any:
        if isinstance(self._value, Exception):
            raise self._value
        return self._value


def test_entry_points_register_their_passes_once_and_a_broken_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch_ir.passes import registry

    points = [_EntryPoint("advertised", Advertised), _EntryPoint("not-a-pass", object)]
    monkeypatch.setattr(
        registry.importlib.metadata, "entry_points", lambda group: points if group == "torch_ir.passes" else []
    )
    monkeypatch.setitem(registry._state, "entry_points", False)
    try:
        assert get_pass("test-adv") is Advertised  # an alias: the entry points are loaded to find it
        assert "not-a-pass" not in registry.all_passes()
        unregister_pass("test-adv")  # by alias: the pass and its aliases leave
        with pytest.raises(PipelineSpecError, match="unknown pass 'test-advertised'"):
            get_pass("test-advertised")  # entry points are read once
        points[:] = [_EntryPoint("broken", RuntimeError("boom"))]
        monkeypatch.setitem(registry._state, "entry_points", False)
        with pytest.raises(
            PipelineSpecError, match=r"^entry point broken = pkg.module:Thing \(torch_ir.passes\) failed: boom$"
        ):
            registry.load_entry_points()
    finally:
        unregister_pass("test-advertised")
