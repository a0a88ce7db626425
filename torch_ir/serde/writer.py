"""The writer: a ``Module`` as a document of ``torch_ir.serde.schema``, then as deterministic JSON text.

The text has one input, weight, node, output or log row per line, so diffs of two IRs read line by line;
the same module, options and versions give the same bytes: nothing that differs from run to run is written
unless ``run_record=True`` asks for it. ``save`` writes atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

import msgspec

from torch_ir.ir.graph import Graph, Node, Value, Weight
from torch_ir.ir.module import Module, StateSpec
from torch_ir.ir.run_record import paused_gc
from torch_ir.ir.symbolic import SymExpr
from torch_ir.ir.types import ScalarType, ValueType
from torch_ir.serde import schema as s
from torch_ir.serde.files import atomic_write_text
from torch_ir.version import __version__


def to_document(module: Module, *, run_record: bool = False) -> s.Document:
    """The document of ``module``, deterministic by default: the same model, options and versions give the same
    document. ``run_record`` adds what differs from run to run: the stage figures (time, memory) and each
    pass's seconds."""
    torch = sys.modules.get("torch")
    stages = None
    if run_record and module.stages.stages:
        stages = [
            s.Stage(
                stage=st.name,
                seconds=round(st.seconds, 6),
                rss_delta_bytes=int(st.rss_delta_bytes),
                peak_rss_bytes=int(st.peak_rss_bytes),
            )
            for st in module.stages.stages
        ]
    return s.Document(
        format=s.FORMAT_NAME,
        schema_version=s.SCHEMA_VERSION,
        producer=s.Producer(name="torch-ir", version=__version__),
        torch_version=str(getattr(torch, "__version__", "unknown")),
        model=module.name,
        stages=stages,
        pass_log=[_pass_row(row, run_record) for row in module.pass_log],
        module=s.ModuleDoc(
            weights=[_weight(w) for w in module.weights.values()],
            state=[_state(st) for st in module.state.values()],
            init=None if module.init is None else _graph(module.init, weights=True),
            functions=[
                s.FunctionDoc(name=name, public=f.public, graph=_graph(f.graph)) for name, f in module.functions.items()
            ],
        ),
    )


def to_dict(module: Module, *, run_record: bool = False) -> dict[str, Any]:
    """The document of ``module`` as plain dicts and lists; ``run_record`` as in ``to_document``."""
    with paused_gc():
        return msgspec.to_builtins(to_document(module, run_record=run_record), enc_hook=_text)  # type: ignore[no-any-return]


def dumps(module: Module, *, run_record: bool = False) -> str:
    """The JSON text of ``module``, one entry per line: the same module always gives the same bytes, unless
    ``run_record`` adds the stage and pass timings (see ``to_document``)."""
    with paused_gc():
        return _dump(msgspec.to_builtins(to_document(module, run_record=run_record), enc_hook=_text), "") + "\n"


def save(module: Module, path: str | os.PathLike[str], *, run_record: bool = False) -> None:
    """Write ``module`` to ``path`` as JSON, atomically; ``run_record`` as in ``to_document``."""
    atomic_write_text(path, dumps(module, run_record=run_record))


def _text(value: Any) -> Any:
    """A symbolic dimension (``SymExpr``, a ``str``) anywhere in a document, written as its text."""
    if isinstance(value, SymExpr):
        return str(value)
    raise TypeError(f"cannot write a {type(value).__name__} into an IR file")


# ----------------------------------------------------------------- the parts


def _pass_row(row: dict[str, Any], run_record: bool) -> s.PassLogEntry:
    seconds = row.get("seconds")
    return s.PassLogEntry(
        pass_name=row["pass"],
        entry=row.get("entry"),
        seconds=round(float(seconds), 6) if run_record and seconds is not None else None,
        modified=row.get("modified"),
        nodes_before=row.get("nodes_before"),
        nodes_after=row.get("nodes_after"),
        weights_before=row.get("weights_before"),
        weights_after=row.get("weights_after"),
    )


def _state(spec: StateSpec) -> s.StateDoc:
    # msgspec leaves a field out when it *is* its default: an equal init read from a file or the text form
    # is another string object, which would be written, and the same module would give other bytes
    return s.StateDoc(name=spec.name, type=_type(spec.type), init=sys.intern(spec.init))  # type: ignore[arg-type]


def _type(type_: ValueType | None) -> s.TensorTypeDoc | None:
    if type_ is None:
        return None
    if isinstance(type_, ScalarType):
        return s.TensorTypeDoc(scalar=type_.kind)  # type: ignore[arg-type]
    shape = [d if isinstance(d, int) else str(d) for d in type_.shape]
    return s.TensorTypeDoc(shape=shape, dtype=type_.dtype)  # type: ignore[arg-type]


def _weight(weight: Weight) -> s.WeightDoc:
    return s.WeightDoc(
        name=weight.name,
        type=_type(weight.type),
        kind=weight.kind,  # type: ignore[arg-type]
        aliases=list(weight.aliases),
        persistent=weight.persistent,
        data=encode_literal(weight.data),
    )


def _value(value: Value) -> s.ValueDoc:
    return s.ValueDoc(name=value.name, type=_type(value.type))


def _graph(graph: Graph, *, weights: bool = False) -> s.GraphDoc:
    """A graph's document; ``weights`` for the init graph, which has a table of its own."""
    return s.GraphDoc(
        inputs=[_value(v) for v in graph.inputs],
        weights=[_weight(w) for w in graph.weights.values()] if weights else [],
        nodes=[_node(n) for n in graph.nodes],
        outputs=[v.ref for v in graph.outputs],
        state_updates=[s.StateUpdateDoc(kind=u.kind, target=u.target, value=u.value.ref) for u in graph.state_updates],  # type: ignore[arg-type]
        input_structure=_structure(graph.input_structure),
        output_structure=_structure(graph.output_structure),
        symbols={name: s.SymbolRangeDoc(min=r.min, max=r.max) for name, r in graph.symbols.items()},
        meta=encode_literal(graph.meta),
    )


def _node(node: Node) -> s.NodeDoc:
    return s.NodeDoc(
        name=node.name,
        op=node.op_type,
        args=[_arg(a) for a in node.args],
        attrs={k: encode_literal(v) for k, v in node.attrs.items()},
        outputs=[_value(v) for v in node.outputs],
        meta=encode_literal(node.meta),
        regions=[_graph(region) for region in node.regions],
    )


def _structure(structure: dict[str, Any] | None) -> s.StructureDoc | None:
    if structure is None:
        return None
    items = structure.get("items")
    return s.StructureDoc(
        kind=structure["kind"],
        class_name=structure.get("class"),
        keys=structure.get("keys"),
        items=None if items is None else [_structure(i) for i in items],  # type: ignore[misc]
        index=structure.get("index"),
        value=encode_literal(structure.get("value")),
    )


def _arg(arg: Any) -> Any:
    if isinstance(arg, Value):
        return arg.ref
    if isinstance(arg, list):
        return [_arg(a) for a in arg]
    if isinstance(arg, str):
        return {"literal": arg}
    return encode_literal(arg)


def encode_literal(value: Any) -> Any:
    """A literal as JSON can hold it: non-finite floats as ``{"float": "inf"}``, tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, dict):
        return {str(k): encode_literal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_literal(v) for v in value]
    return value


# ------------------------------------------------------------------ the text

_LINE_LISTS = frozenset({"inputs", "weights", "nodes", "outputs", "state_updates", "state", "stages", "pass_log"})
"""Lists written one entry per line."""

_OPEN_OBJECTS = frozenset({"", "producer", "module", "init", "graph", "functions", "region"})
"""Objects whose fields are written one per line (the rest is compact)."""


def _dump(value: Any, indent: str, key: str = "") -> str:
    if isinstance(value, dict) and key in _OPEN_OBJECTS:
        inner = indent + "  "
        parts = [f"{inner}{_compact(k)}: {_dump(v, inner, k)}" for k, v in value.items()]
        return "{\n" + ",\n".join(parts) + f"\n{indent}}}" if parts else "{}"
    if isinstance(value, list) and key == "functions":
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _dump(f, inner, "functions") for f in value) + f"\n{indent}]"
    if isinstance(value, list) and key in _LINE_LISTS and value:
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _dump_item(v, inner) for v in value) + f"\n{indent}]"
    return _compact(value)


def _dump_item(value: Any, indent: str) -> str:
    """One entry of a line list; a region op's regions follow its fields, one nested graph each."""
    if not (isinstance(value, dict) and value.get("regions")):
        return _compact(value)
    head = _compact({k: v for k, v in value.items() if k != "regions"})[:-1]
    inner = indent + "  "
    regions = ",\n".join(inner + _dump(r, inner, "region") for r in value["regions"])
    return f'{head}, "regions": [\n{regions}\n{indent}]}}'


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


__all__ = ["dumps", "encode_literal", "save", "to_dict", "to_document"]
