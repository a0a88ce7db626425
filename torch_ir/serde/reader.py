"""The reader: JSON text -> a document of ``torch_ir.serde.schema`` -> a ``Module``.

Reading is pure data: the text is decoded (``msgspec``), upgraded from older versions, checked against
the typed structs (every type, bound and unknown field), then built into IR objects, checking what types
cannot say (references defined before use, region contracts, structure indices). Nothing in a file is
evaluated, imported or opened. Every problem is a ``SerializationError`` naming the file and the JSON path
(``model.json: $.module.functions[0].graph.nodes[3].args[1]: reference to undefined value %nowhere``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from torch_ir.errors import IRError, SerializationError
from torch_ir.ir.graph import Graph, Node, Value, Weight, WeightTable
from torch_ir.ir.module import Module, StateSpec
from torch_ir.ir.regions import REGION_OPS, check_region_op
from torch_ir.ir.run_record import Stage, StageReport, paused_gc
from torch_ir.ir.structure import iter_leaves
from torch_ir.ir.types import ScalarType, SymbolRange, TensorType, ValueType
from torch_ir.serde import schema as s
from torch_ir.serde.upgraders import upgrade

T = TypeVar("T")

_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_BYTE = re.compile(r"\(byte (\d+)\)")


def load(path: str | os.PathLike[str]) -> Module:
    """Read an IR file; a malformed file raises ``SerializationError`` naming the problem and its path."""
    return from_dict(load_document(path), str(path))


def loads(text: str | bytes, source: str = "<string>") -> Module:
    """Parse the JSON text of an IR file."""
    return from_dict(loads_document(text, source), source)


def load_document(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file the way IR files are read: any problem (missing, unreadable, invalid, non-finite
    constants, nested too deeply) is a ``SerializationError`` naming the file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise SerializationError(f"{path}: no such file") from None
    except OSError as exc:
        raise SerializationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return loads_document(data, str(path))


def loads_document(text: str | bytes, source: str = "<string>") -> Any:
    """Parse JSON text (a UTF-8 byte order mark is skipped) into plain dicts and lists."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        with paused_gc():
            return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise SerializationError(
                f"{source}: cannot read: not UTF-8 text ({bad.reason} at byte {bad.start})"
            ) from None
        raise SerializationError(f"{source}: {_decode_problem(data, str(exc))}") from None
    except RecursionError:
        raise SerializationError(f"{source}: JSON nested too deeply") from None


def _decode_problem(data: bytes, message: str) -> str:
    """msgspec's message with a line and column, and the hint for the non-finite floats JSON lacks."""
    match = _BYTE.search(message)
    offset = int(match.group(1)) if match else len(data)
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    word = re.match(rb"-?[A-Za-z]+", data[offset : offset + 9])
    if word and word.group(0) in (b"NaN", b"Infinity", b"-Infinity"):
        return (
            f"not valid JSON at line {line}, column {column}: {word.group(0).decode()} is not valid JSON; "
            'non-finite floats are written as {"float": "inf"}'
        )
    what = _BYTE.sub("", message).replace("JSON is malformed: ", "").strip()
    return f"not valid JSON at line {line}, column {column}: {what} (a truncated or hand-edited file?)"


def from_dict(doc: Any, source: str = "<dict>") -> Module:
    """Build a module from a decoded document of any version, checking every field."""
    if not isinstance(doc, dict):
        raise SerializationError(f"{source}: $: expected an object, got {_kind(doc)}")
    version = doc.get("schema_version")
    if version is None:
        raise SerializationError(f"{source}: $: missing key 'schema_version': not a torch-ir file")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SerializationError(f"{source}: $.schema_version: expected an integer, got {_kind(version)}")
    if version > s.SCHEMA_VERSION:
        raise SerializationError(
            f"{source}: $.schema_version: file has schema version {version}, this torch-ir reads up to "
            f"{s.SCHEMA_VERSION}: upgrade torch-ir"
        )
    if version < 1:
        raise SerializationError(f"{source}: $.schema_version: unknown schema version {version}")
    if doc.get("format", s.FORMAT_NAME) != s.FORMAT_NAME:
        raise SerializationError(f"{source}: $.format: expected {s.FORMAT_NAME!r}, got {doc.get('format')!r}")
    try:
        with paused_gc():
            upgraded = upgrade(doc, source)
            modules = [
                _Builder(source, paths).module(_typed(d, s.Document, source, paths))
                for d, paths in zip(upgraded.documents, upgraded.paths)
            ]
            module = modules[0] if not upgraded.entries else _program(upgraded, modules, source)
            module.table.loaded_from = source
            return module
    except RecursionError:
        raise SerializationError(f"{source}: document nested too deeply") from None


def _typed(data: Any, kind: type[T], source: str, paths: list[tuple[str, str]], prefix: str = "$") -> T:
    """``data`` decoded into the struct ``kind``; a mismatch names its (old) JSON path."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).rpartition(" - at `")
        if not message:
            message, where = str(exc), ""
        path = prefix + where.rstrip("`")[1:] if where else prefix
        raise SerializationError(f"{source}: {_old_path(path, paths)}: {_plain_words(message, path)}") from None


_JSON_KINDS = {"array": "a list", "object": "an object", "str": "a string", "int": "an integer", "float": "a number"}
_JSON_KINDS.update({"bool": "a boolean", "null": "null"})


def _plain_words(message: str, path: str) -> str:
    """A msgspec validation message in the words the rest of torch-ir's errors use."""
    if message.startswith("Object missing required field `"):
        return f"missing key '{message.split('`')[1]}'"
    if message.startswith("Object contains unknown field `"):
        return f"unknown key '{message.split('`')[1]}' (a file of a newer torch-ir, or a hand-edited one?)"
    if message.startswith("Invalid enum value "):
        value = message.removeprefix("Invalid enum value ")
        field = path.rsplit(".", 1)[-1]
        return f"unknown {'dtype' if field == 'dtype' else field} {value}"
    match = re.fullmatch(r"Expected `(\w+)`, got `(\w+)`", message)
    if match:
        want, got = (_JSON_KINDS.get(k, k) for k in match.groups())
        return f"expected {want}, got {got}"
    return message[:1].lower() + message[1:]


def _old_path(path: str, paths: list[tuple[str, str]]) -> str:
    for new, old in paths:
        if path == new or path.startswith((new + ".", new + "[")):
            return old + path[len(new) :]
    return path


def _program(upgraded: Any, modules: list[Module], source: str) -> Module:
    """A version 5 program: the entries' modules merged into one, with the program's declared state."""
    for i, item in enumerate(upgraded.table):
        _typed(item, s.WeightDoc, source, [], f"$.weights[{i}]")
    state: dict[str, StateSpec] = {}
    for i, item in enumerate(upgraded.state if isinstance(upgraded.state, list) else [None]):
        spec = _typed(item, s.StateDoc, source, [], f"$.state[{i}]")
        type_ = _Builder(source, []).type(spec.type, f"$.state[{i}].type")
        state[spec.name] = _guard(source, f"$.state[{i}]", lambda: StateSpec(spec.name, type_, spec.init))  # type: ignore[arg-type]
    entries = {name: module.graph for name, module in zip(upgraded.entries, modules)}
    program = _guard(source, "$.entries", lambda: Module.program(entries, state, modules[0].stages))
    program.pass_log = modules[0].pass_log
    return program


def _guard(source: str, path: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except IRError as exc:
        raise SerializationError(f"{source}: {path}: {exc}") from None


class _Builder:
    """Builds IR objects from a typed document, checking what types cannot say, with JSON paths."""

    def __init__(self, source: str, paths: list[tuple[str, str]]):
        self.source = source
        self.paths = paths

    def fail(self, path: str, message: str) -> SerializationError:
        return SerializationError(f"{self.source}: {_old_path(path, self.paths)}: {message}")

    def guard(self, path: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except IRError as exc:
            raise self.fail(path, str(exc)) from None

    def module(self, doc: s.Document) -> Module:
        module = Module(None, self.stages(doc.stages))
        table = module.table
        for i, weight in enumerate(doc.module.weights):
            self.weight(table, weight, f"$.module.weights[{i}]")
        if doc.module.init is not None:
            table.init = self.graph(doc.module.init, "$.module.init", own_weights=True)
        for i, function in enumerate(doc.module.functions):
            path = f"$.module.functions[{i}]"
            graph = self.graph(function.graph, f"{path}.graph", table=table)
            if function.public and doc.model and doc.model != "model" and "model" not in graph.meta:
                graph.meta["model"] = doc.model
            self.guard(path, lambda: module.add_function(function.name, graph, function.public))
        state = {}
        for i, spec in enumerate(doc.module.state):
            type_ = self.type(spec.type, f"$.module.state[{i}].type")
            state[spec.name] = self.guard(f"$.module.state[{i}]", lambda: StateSpec(spec.name, type_, spec.init))  # type: ignore[arg-type]
        module.state = state
        module.pass_log = [self.pass_row(row) for row in doc.pass_log]
        return module

    def stages(self, stages: list[s.Stage] | None) -> StageReport:
        report = StageReport()
        for stage in stages or []:
            report.stages.append(Stage(stage.stage, stage.seconds, stage.rss_delta_bytes, stage.peak_rss_bytes))
        return report

    @staticmethod
    def pass_row(row: s.PassLogEntry) -> dict[str, Any]:
        out: dict[str, Any] = {"pass": row.pass_name}
        for key in ("entry", "seconds", "modified", "nodes_before", "nodes_after", "weights_before", "weights_after"):
            value = getattr(row, key)
            if value is not None:
                out[key] = value
        return out

    def weight(self, table: WeightTable, doc: s.WeightDoc, path: str) -> None:
        type_ = self.type(doc.type, f"{path}.type")
        weight = Weight(doc.name, type_, doc.kind, doc.aliases, doc.persistent, decode_literal(doc.data))
        self.guard(path, lambda: table.add(weight))

    def graph(
        self,
        doc: s.GraphDoc,
        path: str,
        *,
        table: WeightTable | None = None,
        own_weights: bool = False,
        region: bool = False,
    ) -> Graph:
        graph = Graph(table)
        if doc.weights and not own_weights:
            where = (
                "a region holds no weights (pass captured weights as operands of its op)"
                if region
                else ("a function reads the module's weight table: its weights belong in $.module.weights")
            )
            raise self.fail(f"{path}.weights", where)
        for i, weight in enumerate(doc.weights):
            self.weight(graph.table, weight, f"{path}.weights[{i}]")
        for i, value in enumerate(doc.inputs):
            type_ = self.type(value.type, f"{path}.inputs[{i}].type")
            self.guard(f"{path}.inputs[{i}]", lambda: graph.add_input(value.name, type_))
        for i, node in enumerate(doc.nodes):
            self.node(graph, node, f"{path}.nodes[{i}]")
        outputs = [self.ref(graph, ref, f"{path}.outputs[{i}]") for i, ref in enumerate(doc.outputs)]
        graph.set_outputs(outputs)
        if region and (doc.state_updates or doc.symbols or doc.input_structure or doc.output_structure):
            raise self.fail(path, "a region holds only inputs, nodes, outputs and meta")
        for i, update in enumerate(doc.state_updates):
            p = f"{path}.state_updates[{i}]"
            value = self.ref(graph, update.value, f"{p}.value")
            self.guard(p, lambda: graph.add_state_update(update.kind, update.target, value))
        graph.input_structure = self.structure(
            doc.input_structure, f"{path}.input_structure", "input", len(graph.inputs)
        )
        graph.output_structure = self.structure(
            doc.output_structure, f"{path}.output_structure", "output", len(outputs)
        )
        for name, rng in doc.symbols.items():
            graph.symbols[name] = SymbolRange(rng.min, rng.max)
        graph.meta = decode_literal(doc.meta)
        return graph

    def node(self, graph: Graph, doc: s.NodeDoc, path: str) -> None:
        args = [self.arg(graph, a, f"{path}.args[{j}]", top=True) for j, a in enumerate(doc.args)]
        attrs = {k: decode_literal(v) for k, v in doc.attrs.items()}
        names = [v.name for v in doc.outputs]
        types = [self.type(v.type, f"{path}.outputs[{j}].type") for j, v in enumerate(doc.outputs)]
        meta = decode_literal(doc.meta)
        node = self.guard(
            path, lambda: graph.create_node(doc.op, args, attrs, types, name=doc.name, output_names=names, meta=meta)
        )
        if doc.regions or doc.op in REGION_OPS:
            self.regions(node, doc.regions, f"{path}.regions")

    def regions(self, node: Node, regions: list[s.GraphDoc], path: str) -> None:
        for j, region in enumerate(regions):
            node.regions.append(self.graph(region, f"{path}[{j}]", region=True))
        problem = check_region_op(node)
        if problem:
            raise self.fail(path, f"node {node.name} ({node.op_type}): {problem}")

    def arg(self, graph: Graph, value: Any, path: str, top: bool) -> Any:
        if isinstance(value, str):
            return self.ref(graph, value, path)
        if isinstance(value, list):
            if not top:
                raise self.fail(path, "operand lists cannot nest")
            return [self.arg(graph, v, f"{path}[{k}]", top=False) for k, v in enumerate(value)]
        if isinstance(value, dict) and set(value) == {"literal"} and isinstance(value["literal"], str):
            return value["literal"]
        return decode_literal(value)

    def ref(self, graph: Graph, ref: Any, path: str) -> Value:
        if not isinstance(ref, str) or len(ref) < 2 or ref[0] not in "%@":
            raise self.fail(path, f"expected a reference such as '%x' or '@w', got {ref!r}")
        name = ref[1:]
        if ref[0] == "@":
            if not graph.has_weight(name):
                raise self.fail(path, f"reference to undefined weight {ref}")
            return graph.weight(name)
        if not graph.has_value(name):
            raise self.fail(path, f"reference to undefined value {ref} (not defined before this point)")
        return graph.value(name)

    def type(self, doc: s.TensorTypeDoc | None, path: str) -> ValueType | None:
        if doc is None:
            return None
        if doc.scalar is not None:
            if doc.shape is not None or doc.dtype is not None:
                raise self.fail(path, "a type is a tensor (shape, dtype) or a scalar, not both")
            return ScalarType(doc.scalar)
        if doc.shape is None or doc.dtype is None:
            raise self.fail(path, "a tensor type needs both shape and dtype")
        shape = doc.shape
        return self.guard(path, lambda: TensorType(tuple(shape), doc.dtype))  # type: ignore[arg-type]

    def structure(self, doc: s.StructureDoc | None, path: str, leaf: str, count: int) -> dict[str, Any] | None:
        if doc is None:
            return None
        out = self._structure(doc, path, leaf)
        for item in iter_leaves(out):
            if item["kind"] == leaf and not 0 <= item["index"] < count:
                raise self.fail(path, f"{leaf} index {item['index']} out of range (0..{count - 1})")
        return out

    def _structure(self, doc: s.StructureDoc, path: str, leaf: str) -> dict[str, Any]:
        if doc.kind in ("tuple", "list", "dict", "namedtuple", "custom"):
            if doc.items is None:
                raise self.fail(f"{path}.items", f"a {doc.kind} needs its items")
            if doc.keys is not None and len(doc.keys) != len(doc.items):
                raise self.fail(f"{path}.keys", "keys must be a list as long as items")
            out: dict[str, Any] = {"kind": doc.kind}
            if doc.class_name is not None:
                out["class"] = doc.class_name
            if doc.keys is not None:
                out["keys"] = list(doc.keys)
            out["items"] = [self._structure(x, f"{path}.items[{j}]", leaf) for j, x in enumerate(doc.items)]
            return out
        if doc.kind == "constant":
            return {"kind": "constant", "value": decode_literal(doc.value)}
        if doc.kind != leaf:
            raise self.fail(f"{path}.kind", f"{doc.kind!r} leaf in the {leaf} structure")
        if doc.index is None:
            raise self.fail(f"{path}.index", "expected an integer index")
        return {"kind": doc.kind, "index": doc.index}


def decode_literal(value: Any) -> Any:
    """A literal as the IR holds it: ``{"float": "inf"}`` back to a float, containers copied."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("float"), str) and value["float"] in _NON_FINITE:
            return _NON_FINITE[value["float"]]
        return {k: decode_literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_literal(v) for v in value]
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


__all__ = ["decode_literal", "from_dict", "load", "load_document", "loads", "loads_document"]
