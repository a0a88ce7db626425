"""The JSON Schema of the format and the field tables of docs/ir-format.md, generated from
``torch_ir.serde.schema`` (so the format is described once).

``scripts/gen_format_docs.py`` writes both; a test checks that the committed files are what these
functions make.
"""

from __future__ import annotations

import json
import types
import typing
from importlib import resources
from typing import Any

import msgspec

from torch_ir.serde import schema as s

SCHEMA_FILE = "schema/ir.schema.json"
"""Where the generated JSON Schema ships, inside the ``torch_ir.serde`` package."""


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a current torch-ir document."""
    generated = msgspec.json.schema(s.Document)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://torch-ir.dev/schema/ir-v{s.SCHEMA_VERSION}.json",
        "title": f"torch-ir IR file, schema version {s.SCHEMA_VERSION}",
        "description": "Generated from torch_ir/serde/schema.py; files of older versions are upgraded on load.",
        **generated,
    }


def schema_text() -> str:
    """The JSON Schema as the package ships it (sorted keys, two-space indent, one newline at the end)."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_path() -> str:
    """The path of the JSON Schema that ships in the package."""
    return str(resources.files("torch_ir.serde").joinpath(SCHEMA_FILE))


def load_schema() -> dict[str, Any]:
    """The JSON Schema that ships in the package, as a dict."""
    return json.loads(resources.files("torch_ir.serde").joinpath(SCHEMA_FILE).read_text("utf-8"))  # type: ignore[no-any-return]


def field_tables() -> str:
    """Markdown: one table per struct of the document (field, type, default, meaning), then the versions."""
    out: list[str] = []
    for struct in s.STRUCTS:
        out.append(f"### {_title(struct)}\n")
        out.append(" ".join((struct.__doc__ or "").split()) + "\n")
        out.append("| field | type | default | meaning |")
        out.append("|---|---|---|---|")
        hints = typing.get_type_hints(struct, include_extras=True)
        for field in msgspec.structs.fields(struct):
            hint = hints[field.name]
            default = "required" if field.required else f"`{json.dumps(_default(field))}`"
            out.append(f"| `{field.encode_name}` | {_type_text(hint)} | {default} | {_meaning(hint)} |")
        out.append("")
    out.append("### Versions\n")
    out.append("| version | change |")
    out.append("|---|---|")
    out.extend(f"| {v} | {text} |" for v, text in s.VERSION_HISTORY.items())
    return "\n".join(out) + "\n"


def _title(struct: type) -> str:
    return struct.__name__.removesuffix("Doc") if struct is not s.Document else "Document (top level)"


def _default(field: Any) -> Any:
    value = field.default if field.default is not msgspec.NODEFAULT else field.default_factory()
    return msgspec.to_builtins(value)


def _meaning(hint: Any) -> str:
    texts = [m.description for m in _metas(hint) if m.description]
    bounds = [_bound_text(m) for m in _metas(hint)]
    parts = [*texts, *(b for b in bounds if b)]
    return "; ".join(parts).replace("|", "\\|")


def _metas(hint: Any) -> list[msgspec.Meta]:
    found: list[msgspec.Meta] = []
    if typing.get_origin(hint) is typing.Annotated:
        found.extend(m for m in hint.__metadata__ if isinstance(m, msgspec.Meta))
        found.extend(_metas(typing.get_args(hint)[0]))
    elif typing.get_origin(hint) in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            found.extend(m for m in _metas(arg) if not m.description)
    return found


def _bound_text(meta: msgspec.Meta) -> str:
    parts = []
    if meta.ge is not None:
        parts.append(f">= {_number(meta.ge)}")
    if meta.le is not None:
        parts.append(f"<= {_number(meta.le)}")
    if meta.max_length is not None:
        parts.append(f"at most {meta.max_length} long")
    return ", ".join(parts)


def _number(value: float) -> str:
    if isinstance(value, int) and abs(value) >= 2**20 and (abs(value) & (abs(value) - 1)) == 0:
        return f"{'-' if value < 0 else ''}2^{abs(value).bit_length() - 1}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _type_text(hint: Any) -> str:
    """A short spelling of a field's type: ``integer``, ``list of Node``, ``"zeros"``, ``Graph or null``."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _type_text(typing.get_args(hint)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type_text(a) for a in typing.get_args(hint)))
    if origin is typing.Literal:
        values = typing.get_args(hint)
        return " / ".join(f"`{json.dumps(v)}`" for v in values) if len(values) <= 8 else "dtype name"
    if origin is list:
        return f"list of {_type_text(typing.get_args(hint)[0])}"
    if origin is dict:
        return f"object of {_type_text(typing.get_args(hint)[1])}"
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return _title(hint)
    return {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}.get(hint, "any JSON")


__all__ = ["field_tables", "json_schema", "load_schema", "schema_path", "schema_text"]
