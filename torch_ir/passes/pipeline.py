"""Pipeline specs: the text form (``annotate-shapes,hoist-weights{min-numel=16},dce``) and pipeline files.

A ``Pipeline`` is a list of configured passes plus the plugins they need and the instrumentation settings
(verify-each, print-ir-before/after, dump-dir, timing, steps, reproducer). ``str(pipeline)`` gives the
text form back. Files are TOML, YAML or JSON and say the same thing::

    plugins = ["my_pkg.passes"]
    pipeline = "annotate-shapes,dce"          # or a list of passes:
    [[passes]]
    name = "hoist-weights"
    min-numel = 16
    [instrumentation]
    verify-each = true
    timing = true
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch_ir.errors import PipelineSpecError
from torch_ir.passes.base import Pass, type_text
from torch_ir.passes.registry import get_pass, load_plugins

DEFAULT_PIPELINE = "annotate-shapes,canonicalize,cse,dedup-weights,hoist-weights,eliminate-dead-nodes"
"""What ``extract_ir`` runs: shapes checked, export leftovers removed, duplicates merged (CSE before
hoisting so a weight transposed twice hoists once; dedup before hoisting so tied weights hoist once),
weight-only work moved to the init graph, and dead nodes and weights removed last."""

FUNCTIONS_PIPELINE = (
    "annotate-shapes,canonicalize,outline-repeated-blocks,cse,dedup-weights,hoist-weights,eliminate-dead-nodes"
)
"""What ``extract_ir(..., functions=True)`` runs: the default pipeline with ``outline-repeated-blocks`` before
``cse`` (CSE across blocks would make equal blocks differ). Outlining writes the functions extraction traced
in their normal form and outlines any repeated block traced inline, so a module extracted with functions is
the flat extraction run through this pipeline."""

NAMED_PIPELINES = {"default": DEFAULT_PIPELINE, "functions": FUNCTIONS_PIPELINE, "none": ""}

FILE_SUFFIXES = (".toml", ".yaml", ".yml", ".json")

SETTINGS = ("verify-each", "print-ir-before", "print-ir-after", "dump-dir", "timing", "steps", "reproducer")
"""Instrumentation settings a pipeline file may hold (top level or under ``instrumentation``)."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


@dataclass
class Pipeline:
    """Configured passes in order, the plugin modules they come from, and instrumentation settings."""

    passes: list[Pass] = field(default_factory=list)
    plugins: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    source: str = "<text>"

    def __str__(self) -> str:
        return ",".join(format_pass(p) for p in self.passes)

    def __iter__(self) -> typing.Iterator[Pass]:
        return iter(self.passes)

    def __len__(self) -> int:
        return len(self.passes)

    @property
    def names(self) -> list[str]:
        """The pass names in order."""
        return [p.name for p in self.passes]


# --------------------------------------------------------------------- text form


def format_pass(p: Pass) -> str:
    """``name{opt=value,...}`` with only the options that differ from their defaults."""
    opts = p.option_values()
    if not opts:
        return p.name
    return p.name + "{" + ",".join(f"{k}={format_value(v)}" for k, v in opts.items()) + "}"


def format_value(value: Any) -> str:
    """An option value as pipeline text writes it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, str):
        return (
            value
            if re.fullmatch(r"[A-Za-z0-9_.\-/:@]+", value) and value.lower() not in ("none", "true", "false")
            else json.dumps(value)
        )
    return repr(value)


def parse_pipeline(text: str, source: str = "<text>") -> Pipeline:
    """Parse pipeline text; errors are ``PipelineSpecError`` naming the position and what was expected."""
    return Pipeline([instantiate(name, opts, source) for name, opts in split_pipeline(text, source)], source=source)


def split_pipeline(text: str, source: str = "<text>") -> list[tuple[str, dict[str, str]]]:
    """The ``(name, {option: raw text})`` entries of pipeline text, not yet checked against the registry."""
    out: list[tuple[str, dict[str, str]]] = []
    pos, n = 0, len(text)

    def fail(message: str, at: int) -> PipelineSpecError:
        return PipelineSpecError(f"{source}: malformed pipeline at column {at + 1}: {message}\n  {text}\n  {' ' * at}^")

    def skip(p: int) -> int:
        while p < n and text[p] in " \t\r\n":
            p += 1
        return p

    pos = skip(pos)
    if pos == n:
        return out
    while True:
        pos = skip(pos)
        match = _NAME.match(text, pos)
        if not match:
            raise fail("expected a pass name" + (" (empty name)" if pos == n or text[pos] in ",{" else ""), pos)
        name, pos = match.group(0), skip(match.end())
        options: dict[str, str] = {}
        if pos < n and text[pos] == "{":
            pos = skip(pos + 1)
            while pos < n and text[pos] != "}":
                key = _NAME.match(text, pos)
                if not key:
                    raise fail("expected an option name", pos)
                pos = skip(key.end())
                if pos >= n or text[pos] != "=":
                    raise fail(f"expected '=' after option {key.group(0)!r}", pos)
                value, pos = _scan_value(text, skip(pos + 1), fail)
                if key.group(0) in options:
                    raise fail(f"option {key.group(0)!r} given twice", key.start())
                options[key.group(0)] = value
                pos = skip(pos)
                if pos < n and text[pos] == ",":
                    pos = skip(pos + 1)
                elif pos < n and text[pos] != "}":
                    raise fail("expected ',' or '}'", pos)
            if pos >= n:
                raise fail(f"unbalanced '{{': options of {name!r} are not closed with '}}'", pos)
            pos = skip(pos + 1)
        out.append((name, options))
        if pos == n:
            return out
        if text[pos] != ",":
            raise fail("expected ',' between passes" + (" (unbalanced '}')" if text[pos] == "}" else ""), pos)
        pos += 1
        if skip(pos) == n:
            raise fail("empty pass name after ','", pos)


def _scan_value(text: str, pos: int, fail: Any) -> tuple[str, int]:
    n = len(text)
    if pos < n and text[pos] == '"':
        try:
            _, end = json.JSONDecoder().raw_decode(text, pos)
        except json.JSONDecodeError:
            raise fail("unterminated string", pos) from None
        return text[pos:end], end
    if pos < n and text[pos] == "[":
        end = text.find("]", pos)
        if end < 0:
            raise fail("unbalanced '['", pos)
        return text[pos : end + 1], end + 1
    start = pos
    while pos < n and text[pos] not in ",}{":
        pos += 1
    if pos < n and text[pos] == "{":
        raise fail("unexpected '{' in an option value", pos)
    value = text[start:pos].strip()
    if not value:
        raise fail("empty option value", start)
    return value, pos


# ----------------------------------------------------------------- typed options


def instantiate(name: str, options: Mapping[str, Any], source: str = "<text>") -> Pass:
    """The configured pass ``name`` with ``options`` coerced to its field types."""
    cls = get_pass(name)
    known = {o.name: o for o in cls.options()}
    known.update({o.field: o for o in cls.options()})
    kwargs: dict[str, Any] = {}
    for key, raw in options.items():
        opt = known.get(key)
        if opt is None:
            names = sorted({o.name for o in cls.options()})
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            listing = ", ".join(names) if names else "none"
            raise PipelineSpecError(f"{source}: pass {cls.name!r} has no option {key!r}{hint} (its options: {listing})")
        try:
            kwargs[opt.field] = coerce(raw, opt.type)
        except ValueError as exc:
            raise PipelineSpecError(
                f"{source}: option {opt.name!r} of pass {cls.name!r} expects {opt.type_text}, got {raw!r} ({exc})"
            ) from None
    missing = [o.name for o in cls.options() if o.default is dataclasses.MISSING and o.field not in kwargs]
    if missing:
        raise PipelineSpecError(f"{source}: pass {cls.name!r} needs option(s) {', '.join(missing)}")
    return cls(**kwargs)


def coerce(value: Any, hint: Any) -> Any:
    """``value`` (text from a pipeline string, or a TOML/YAML/JSON value) as type ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors) or "no matching type")
    if origin in (tuple, list):
        items = _as_list(value)
        if (origin is list and args) or (len(args) == 2 and args[1] is Ellipsis):
            out = [coerce(v, args[0]) for v in items]
        elif args:
            if len(items) != len(args):
                raise ValueError(f"expected {len(args)} items, got {len(items)}")
            out = [coerce(v, a) for v, a in zip(items, args)]
        else:
            out = list(items)
        return tuple(out) if origin is tuple else out
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError("not a boolean (true/false)")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value)
        raise ValueError("not an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                result = float(value)
            except ValueError:
                raise ValueError("not a number") from None
            if math.isnan(result) and value.strip().lower() != "nan":
                raise ValueError("not a number")
            return result
        raise ValueError("not a number")
    if hint is str:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith('"'):
                try:
                    return str(json.loads(text))
                except json.JSONDecodeError:
                    raise ValueError("malformed quoted string") from None
            return text
        raise ValueError("not a string")
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise ValueError(f"options of type {type_text(hint)} are not supported in pipeline specs")


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        return [t.strip() for t in text.split(",") if t.strip()] if text.strip() else []
    raise ValueError("not a list")


# ------------------------------------------------------------------------ files


def is_pipeline_file(spec: Any) -> bool:
    """Whether ``spec`` names a pipeline file (a Path, or a string ending in .toml/.yaml/.yml/.json)."""
    if isinstance(spec, Path):
        return True
    return isinstance(spec, str) and spec.strip().lower().endswith(FILE_SUFFIXES) and "{" not in spec


def load_pipeline_file(path: str | os.PathLike[str]) -> Pipeline:
    """Read a TOML, YAML or JSON pipeline file (plugins are imported before passes are looked up)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise PipelineSpecError(f"{path}: unknown pipeline file type {suffix!r}; use .toml, .yaml, .yml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineSpecError(f"{path}: no such pipeline file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineSpecError(f"{path}: cannot read: {exc}") from None
    return pipeline_from_document(_parse_document(text, suffix, str(path)), str(path))


def _parse_document(text: str, suffix: str, source: str) -> Any:
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PipelineSpecError(f"{source}: not valid TOML: {exc}") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise PipelineSpecError(
                f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PipelineSpecError(f"{source}: not valid YAML: {exc}") from None


def pipeline_from_document(doc: Any, source: str = "<document>") -> Pipeline:
    """A ``Pipeline`` from a parsed pipeline file (a mapping, or just a list of passes)."""
    if isinstance(doc, list):
        doc = {"passes": doc}
    if not isinstance(doc, Mapping):
        raise PipelineSpecError(
            f"{source}: a pipeline file holds a table/mapping with 'passes', got {type(doc).__name__}"
        )
    top = ("passes", "pipeline", "plugins", "instrumentation", *SETTINGS)
    for key in doc:
        if key not in top:
            close = difflib.get_close_matches(str(key), top, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PipelineSpecError(f"{source}: unknown key {key!r}{hint} (known: {', '.join(top)})")
    plugins = doc.get("plugins") or []
    if isinstance(plugins, str):
        plugins = [plugins]
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise PipelineSpecError(f"{source}: 'plugins' must be a list of module names")
    load_plugins(plugins)
    settings = _read_settings(doc, source)
    if "pipeline" in doc and "passes" in doc:
        raise PipelineSpecError(f"{source}: give either 'pipeline' (text) or 'passes' (a list), not both")
    passes: list[Pass] = []
    if "pipeline" in doc:
        text = doc["pipeline"]
        if not isinstance(text, str):
            raise PipelineSpecError(f"{source}: 'pipeline' must be pipeline text such as \"canonicalize,cse\"")
        passes = resolve_pipeline(text).passes
    else:
        entries = doc.get("passes") or []
        if not isinstance(entries, list):
            raise PipelineSpecError(f"{source}: 'passes' must be a list")
        for i, entry in enumerate(entries):
            where = f"{source}: passes[{i}]"
            if isinstance(entry, str):
                passes.extend(parse_pipeline(entry, where).passes)
            elif isinstance(entry, Mapping):
                if not isinstance(entry.get("name"), str):
                    raise PipelineSpecError(f"{where}: each pass needs a 'name'")
                raw_options = entry.get("options") or {}
                if not isinstance(raw_options, Mapping):
                    raise PipelineSpecError(f"{where}: 'options' must be a table of options, got {raw_options!r}")
                options = dict(raw_options)
                options.update({k: v for k, v in entry.items() if k not in ("name", "options")})
                passes.append(instantiate(entry["name"], options, where))
            else:
                raise PipelineSpecError(f"{where}: expected a pass name or a table with 'name', got {entry!r}")
    return Pipeline(passes, tuple(plugins), settings, source)


def _read_settings(doc: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = doc.get("instrumentation") or {}
    if not isinstance(section, Mapping):
        raise PipelineSpecError(f"{source}: 'instrumentation' must be a table of settings, got {section!r}")
    raw = dict(section)
    raw.update({k: doc[k] for k in SETTINGS if k in doc})
    types: dict[str, Any] = {
        "verify-each": bool,
        "print-ir-before": tuple[str, ...],
        "print-ir-after": tuple[str, ...],
        "dump-dir": str,
        "timing": bool,
        "steps": int,
        "reproducer": str,
    }
    out: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key).replace("_", "-")
        if key not in types:
            close = difflib.get_close_matches(key, SETTINGS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PipelineSpecError(f"{source}: unknown instrumentation setting {key!r}{hint}")
        if key.startswith("print-ir") and isinstance(value, str):
            value = [value]
        try:
            out[key] = coerce(value, types[key])
        except ValueError as exc:
            raise PipelineSpecError(f"{source}: setting {key!r} expects {type_text(types[key])}: {exc}") from None
    return out


def resolve_pipeline(spec: Any) -> Pipeline:
    """A ``Pipeline`` from text, a named pipeline, a file path, a ``Pipeline``, passes, or None."""
    if spec is None:
        return Pipeline()
    if isinstance(spec, Pipeline):
        return spec
    if isinstance(spec, Pass):
        return Pipeline([spec])
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        passes: list[Pass] = []
        for item in spec:
            passes.extend(resolve_pipeline(item).passes)
        return Pipeline(passes)
    if is_pipeline_file(spec):
        return load_pipeline_file(spec)
    if isinstance(spec, str):
        text = spec.strip()
        if text in NAMED_PIPELINES:
            return parse_pipeline(NAMED_PIPELINES[text], f"pipeline {text!r}")
        return parse_pipeline(text)
    raise PipelineSpecError(
        f"cannot make a pipeline from {type(spec).__name__}: give pipeline text, a .toml/.yaml/.json file, "
        "a Pipeline, a PassManager, 'default' or 'none'"
    )


__all__ = [
    "DEFAULT_PIPELINE",
    "Pipeline",
    "coerce",
    "format_pass",
    "instantiate",
    "load_pipeline_file",
    "parse_pipeline",
    "pipeline_from_document",
    "resolve_pipeline",
    "split_pipeline",
]
