"""The JSON backend: a versioned, deterministic file format for the IR, and its loader.

``save_ir`` writes atomically; ``load_ir`` never executes code and needs no torch. Every problem in a
file is a ``SerializationError`` that names the JSON path (``$.graph.nodes[3].args[1]``). The format is
described field by field in docs/ir-format.md and by the JSON Schema ``schema/ir.schema.json``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from importlib import resources
from typing import Any

from torch_ir.backends.files import atomic_write_text
from torch_ir.errors import IRError, SerializationError
from torch_ir.ir.graph import WEIGHT_KINDS, Graph, Node, Value, Weight
from torch_ir.ir.program import IR, StateSpec
from torch_ir.ir.regions import REGION_OPS, check_region_op
from torch_ir.ir.structure import CONTAINER_KINDS, LEAF_KINDS, iter_leaves
from torch_ir.ir.types import DTYPES, SCALAR_KINDS, ScalarType, SymbolRange, TensorType, ValueType
from torch_ir.profiling import Stage, StageReport, paused_gc

SCHEMA_VERSION = 5
"""Bumped on every change of the format; files of a newer version are refused, older ones still load.

1: the first format. 2: explicit ``state_updates`` per graph (version-1 files recorded buffer mutations as
extra outputs listed in ``meta.mutations``; they are read back as state updates). 3: programs: ``entries``
(named graphs) over one top-level ``weights`` table, with declared ``state``; single-graph files unchanged.
4: nodes may own ``regions`` (control flow: cond, while_loop, scan, map).
5: optional top-level ``stages`` (time and memory of each extraction stage) and ``pass_log`` (what each pass
did); files without them load with both empty."""

PASS_LOG_KEYS = (
    "pass",
    "entry",
    "seconds",
    "modified",
    "nodes_before",
    "nodes_after",
    "weights_before",
    "weights_after",
)
"""The fields of one ``pass_log`` entry, in the order they are written (``seconds`` only in a run record)."""

FORMAT_NAME = "torch-ir"

_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def schema_path() -> str:
    """The path of the JSON Schema that ships in the package."""
    return str(resources.files("torch_ir.backends").joinpath("schema/ir.schema.json"))


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the format, as a dict."""
    return json.loads(resources.files("torch_ir.backends").joinpath("schema/ir.schema.json").read_text("utf-8"))


# ------------------------------------------------------------------------ write


def ir_to_dict(ir: IR, *, run_record: bool = False) -> dict[str, Any]:
    """The JSON document for ``ir`` (plain dicts and lists).

    Deterministic by default: the same model, options and versions give the same document. ``run_record``
    adds what differs from run to run: the ``stages`` figures (time, memory) and each pass's ``seconds``.
    """
    from torch_ir import __version__

    torch = sys.modules.get("torch")
    torch_version = str(getattr(torch, "__version__", "unknown"))
    doc: dict[str, Any] = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "producer": {"name": "torch-ir", "version": __version__},
        "torch_version": torch_version,
        "model": ir.name,
    }
    if run_record and ir.stages.stages:
        doc["stages"] = [
            {
                "stage": s.name,
                "seconds": round(s.seconds, 6),
                "rss_delta_bytes": int(s.rss_delta_bytes),
                "peak_rss_bytes": int(s.peak_rss_bytes),
            }
            for s in ir.stages.stages
        ]
    doc["pass_log"] = [_pass_entry_to_json(entry, run_record) for entry in ir.pass_log]
    if not ir.is_program:
        doc["graph"] = graph_to_dict(ir.graph)
        return doc
    table: dict[str, dict[str, Any]] = {}
    for graph in ir.entries.values():
        for weight in graph.weights.values():
            if weight.kind != "derived":
                table.setdefault(weight.name, _weight_to_json(weight))
    doc["weights"] = list(table.values())
    doc["state"] = [{"name": s.name, "type": _type_to_json(s.type), "init": s.init} for s in ir.state.values()]
    doc["entries"] = {name: graph_to_dict(graph, shared=True) for name, graph in ir.entries.items()}
    return doc


def _pass_entry_to_json(entry: dict[str, Any], run_record: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in PASS_LOG_KEYS:
        if key not in entry or (key == "seconds" and not run_record):
            continue
        value = entry[key]
        out[key] = round(float(value), 6) if key == "seconds" else value
    return out


def graph_to_dict(graph: Graph, shared: bool = False) -> dict[str, Any]:
    """The JSON object for one graph (the init graph nested under ``init``). With ``shared``, weights other
    than derived ones are written by name, as references into the program's weight table."""
    return {
        "inputs": [{"name": v.name, "type": _type_to_json(v.type)} for v in graph.inputs],
        "weights": [w.name if shared and w.kind != "derived" else _weight_to_json(w) for w in graph.weights.values()],
        "nodes": [
            {
                "name": node.name,
                "op": node.op_type,
                "args": [_arg_to_json(a) for a in node.args],
                "attrs": {k: _literal_to_json(v) for k, v in node.attrs.items()},
                "outputs": [{"name": v.name, "type": _type_to_json(v.type)} for v in node.outputs],
                "meta": _literal_to_json(node.meta),
                **_regions_to_json(node),
            }
            for node in graph.nodes
        ],
        "outputs": [v.ref for v in graph.outputs],
        "state_updates": [{"kind": u.kind, "target": u.target, "value": u.value.ref} for u in graph.state_updates],
        "input_structure": _literal_to_json(graph.input_structure),
        "output_structure": _literal_to_json(graph.output_structure),
        "symbols": {name: {"min": r.min, "max": r.max} for name, r in graph.symbols.items()},
        "meta": _literal_to_json(graph.meta),
        "init": None if graph.init is None else graph_to_dict(graph.init),
    }


def _regions_to_json(node: Node) -> dict[str, Any]:
    """``{"regions": [...]}`` for a region op (each region: inputs, nodes, outputs), else nothing."""
    if not node.regions:
        return {}
    regions = []
    for region in node.regions:
        data = graph_to_dict(region)
        regions.append({key: data[key] for key in REGION_KEYS if key != "meta" or data[key]})
    return {"regions": regions}


REGION_KEYS = ("inputs", "nodes", "outputs", "meta")
"""What a region holds in JSON: no weights (captured weights are operands of its op), no init graph."""


def dumps_ir(ir: IR, *, run_record: bool = False) -> str:
    """The JSON text for ``ir``, one entry per line: the same IR always gives the same bytes, unless
    ``run_record`` adds the stage and pass timings (see ``ir_to_dict``)."""
    with paused_gc():
        return _dump(ir_to_dict(ir, run_record=run_record), "") + "\n"


_LINE_LISTS = frozenset({"inputs", "weights", "nodes", "outputs", "state_updates", "state", "stages", "pass_log"})


def _dump(value: Any, indent: str, key: str = "") -> str:
    """Indented objects, with the entries of inputs/weights/nodes each compact on one line."""
    if (
        isinstance(value, dict)
        and key not in ("meta", "input_structure", "output_structure", "symbols")
        and ("graph" in value or "nodes" in value or key in ("producer", "", "entries"))
    ):
        inner = indent + "  "
        parts = [f"{inner}{_compact(k)}: {_dump(v, inner, k)}" for k, v in value.items()]
        return "{\n" + ",\n".join(parts) + f"\n{indent}}}" if parts else "{}"
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


def save_ir(ir: IR, path: str | os.PathLike[str], *, run_record: bool = False) -> None:
    """Write ``ir`` to ``path`` as JSON, atomically (temp file + rename); ``run_record`` as in ``ir_to_dict``."""
    atomic_write_text(path, dumps_ir(ir, run_record=run_record))


def _type_to_json(type_: ValueType | None) -> dict[str, Any] | None:
    if type_ is None:
        return None
    if isinstance(type_, ScalarType):
        return {"scalar": type_.kind}
    return {"shape": list(type_.shape), "dtype": type_.dtype}


def _weight_to_json(weight: Weight) -> dict[str, Any]:
    return {
        "name": weight.name,
        "type": _type_to_json(weight.type),
        "kind": weight.kind,
        "aliases": list(weight.aliases),
        "persistent": weight.persistent,
        "data": _literal_to_json(weight.data),
    }


def _arg_to_json(arg: Any) -> Any:
    if isinstance(arg, Value):
        return arg.ref
    if isinstance(arg, list):
        return [_arg_to_json(a) for a in arg]
    if isinstance(arg, str):
        return {"literal": arg}
    return _literal_to_json(arg)


def _literal_to_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, dict):
        return {str(k): _literal_to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_literal_to_json(v) for v in value]
    return value


# ------------------------------------------------------------------------- read


def load_ir(path: str | os.PathLike[str]) -> IR:
    """Read an IR file; a malformed file raises ``SerializationError`` naming the problem and its path."""
    return ir_from_dict(load_json_document(path), str(path))


def load_json_document(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file the way IR files are read: any problem (missing, unreadable, invalid, non-finite
    constants, nested too deeply) is a ``SerializationError`` naming the file."""
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte order mark, as some editors write, is skipped
            text = f.read()
    except FileNotFoundError:
        raise SerializationError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SerializationError(f"{path}: cannot read: {exc}") from None
    return loads_json_document(text, str(path))


def loads_ir(text: str, source: str = "<string>") -> IR:
    """Parse the JSON text of an IR file."""
    return ir_from_dict(loads_json_document(text, source), source)


def loads_json_document(text: str, source: str = "<string>") -> Any:
    """Parse JSON text as ``load_json_document`` does."""
    try:
        with paused_gc():
            doc = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise SerializationError(
            f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg} "
            "(a truncated or hand-edited file?)"
        ) from None
    except RecursionError:
        raise SerializationError(f"{source}: JSON nested too deeply") from None
    except ValueError as exc:
        raise SerializationError(f"{source}: {exc}") from None
    return doc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f'{name} is not valid JSON; non-finite floats are written as {{"float": "inf"}}')


def ir_from_dict(doc: Any, source: str = "<dict>") -> IR:
    """Build an IR from a parsed JSON document, checking every field."""
    reader = _Reader(source)
    try:
        with paused_gc():
            return reader.read_document(doc)
    except RecursionError:
        raise SerializationError(f"{source}: document nested too deeply") from None


class _Reader:
    """Checks and decodes a document, tracking the JSON path for errors."""

    def __init__(self, source: str):
        self.source = source
        self.shared: dict[str, Any] = {}

    def fail(self, path: str, message: str) -> SerializationError:
        return SerializationError(f"{self.source}: {path}: {message}")

    def obj(self, value: Any, path: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {_kind(value)}")
        for key in required:
            if key not in value:
                raise self.fail(path, f"missing key {key!r}")
        return value

    def lst(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}")
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"expected a non-empty string, got {_kind(value)}")
        return value

    def read_document(self, doc: Any) -> IR:
        doc = self.obj(doc, "$")
        if "schema_version" not in doc:
            raise self.fail("$", "missing key 'schema_version': not a torch-ir file")
        version = doc["schema_version"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise self.fail("$.schema_version", f"expected an integer, got {_kind(version)}")
        if version > SCHEMA_VERSION:
            raise self.fail(
                "$.schema_version",
                f"file has schema version {version}, this torch-ir reads up to {SCHEMA_VERSION}: upgrade torch-ir",
            )
        if version < 1:
            raise self.fail("$.schema_version", f"unknown schema version {version}")
        if doc.get("format", FORMAT_NAME) != FORMAT_NAME:
            raise self.fail("$.format", f"expected {FORMAT_NAME!r}, got {doc.get('format')!r}")
        if "model" in doc and not isinstance(doc["model"], str):
            raise self.fail("$.model", f"expected a string, got {_kind(doc['model'])}")
        if "entries" in doc and version >= 3:
            ir = self.read_program(doc)
        else:
            self.obj(doc, "$", ("graph",))
            graph = self.read_graph(doc["graph"], "$.graph")
            if version == 1:
                self.upgrade_mutations(graph, "$.graph.meta.mutations")
            ir = IR(graph)
        for graph in ir.entries.values():
            if "model" not in graph.meta and doc.get("model", "model") != "model":
                graph.meta["model"] = doc["model"]
        ir.stages = self.read_stages(doc.get("stages"), "$.stages")
        ir.pass_log = self.read_pass_log(doc.get("pass_log"), "$.pass_log")
        return ir

    def read_program(self, doc: dict[str, Any]) -> IR:
        self.shared = {}
        for i, item in enumerate(self.lst(doc.get("weights", []), "$.weights")):
            p = f"$.weights[{i}]"
            item = self.obj(item, p, ("name", "kind"))
            name = self.string(item["name"], f"{p}.name")
            if name in self.shared:
                raise self.fail(p, f"weight {name!r} is in the weight table twice")
            self.shared[name] = item
        state: dict[str, StateSpec] = {}
        for i, item in enumerate(self.lst(doc.get("state", []), "$.state")):
            p = f"$.state[{i}]"
            item = self.obj(item, p, ("name", "type"))
            name = self.string(item["name"], f"{p}.name")
            type_ = self.read_type(item["type"], f"{p}.type")
            init = item.get("init", "zeros")
            state[name] = self.guard(p, lambda: StateSpec(name, type_, init))  # type: ignore[arg-type]
        entries_data = self.obj(doc["entries"], "$.entries")
        entries = {name: self.read_graph(g, f"$.entries.{name}") for name, g in entries_data.items()}
        ir = self.guard("$.entries", lambda: IR.program(entries, state))
        return ir

    def read_stages(self, data: Any, path: str) -> StageReport:
        report = StageReport()
        if data is None:
            return report
        for i, item in enumerate(self.lst(data, path)):
            p = f"{path}[{i}]"
            item = self.obj(item, p, ("stage", "seconds"))
            stage = Stage(self.string(item["stage"], f"{p}.stage"), self.number(item["seconds"], f"{p}.seconds"))
            for key in ("rss_delta_bytes", "peak_rss_bytes"):
                value = item.get(key, 0)
                if not _is_int(value):
                    raise self.fail(f"{p}.{key}", f"expected an integer, got {_kind(value)}")
                setattr(stage, key, value)
            report.stages.append(stage)
        return report

    def read_pass_log(self, data: Any, path: str) -> list[dict[str, Any]]:
        if data is None:
            return []
        log = []
        for i, item in enumerate(self.lst(data, path)):
            p = f"{path}[{i}]"
            item = self.obj(item, p, ("pass",))
            entry: dict[str, Any] = {"pass": self.string(item["pass"], f"{p}.pass")}
            if "entry" in item:
                entry["entry"] = self.string(item["entry"], f"{p}.entry")
            if "seconds" in item:
                entry["seconds"] = self.number(item["seconds"], f"{p}.seconds")
            if "modified" in item:
                if not isinstance(item["modified"], bool):
                    raise self.fail(f"{p}.modified", f"expected true or false, got {_kind(item['modified'])}")
                entry["modified"] = item["modified"]
            for key in ("nodes_before", "nodes_after", "weights_before", "weights_after"):
                if key in item:
                    if not _is_int(item[key]) or item[key] < 0:
                        raise self.fail(f"{p}.{key}", f"expected a count, got {item[key]!r}")
                    entry[key] = item[key]
            log.append(entry)
        return log

    def number(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise self.fail(path, f"expected a number of 0 or more, got {value!r}")
        return float(value)

    def read_graph(self, data: Any, path: str) -> Graph:
        data = self.obj(data, path, ("inputs", "weights", "nodes", "outputs"))
        graph = Graph()
        for i, item in enumerate(self.lst(data["inputs"], f"{path}.inputs")):
            p = f"{path}.inputs[{i}]"
            item = self.obj(item, p, ("name",))
            name = self.string(item["name"], f"{p}.name")
            self.guard(p, lambda: graph.add_input(name, self.read_type(item.get("type"), f"{p}.type")))
        for i, item in enumerate(self.lst(data["weights"], f"{path}.weights")):
            self.read_weight(graph, item, f"{path}.weights[{i}]")
        for i, item in enumerate(self.lst(data["nodes"], f"{path}.nodes")):
            self.read_node(graph, item, f"{path}.nodes[{i}]")
        outputs = [
            self.ref(graph, r, f"{path}.outputs[{i}]")
            for i, r in enumerate(self.lst(data["outputs"], f"{path}.outputs"))
        ]
        graph.set_outputs(outputs)
        for i, item in enumerate(self.lst(data.get("state_updates", []), f"{path}.state_updates")):
            p = f"{path}.state_updates[{i}]"
            item = self.obj(item, p, ("kind", "target", "value"))
            kind, target = item["kind"], self.string(item["target"], f"{p}.target")
            value = self.ref(graph, item["value"], f"{p}.value")
            self.guard(p, lambda: graph.add_state_update(kind, target, value))
        graph.input_structure = self.read_structure(data.get("input_structure"), f"{path}.input_structure", "input")
        graph.output_structure = self.read_structure(data.get("output_structure"), f"{path}.output_structure", "output")
        for name, rng in self.obj(data.get("symbols") or {}, f"{path}.symbols").items():
            p = f"{path}.symbols.{name}"
            rng = self.obj(rng, p, ("min",))
            low, high = rng["min"], rng.get("max")
            if not _is_int(low) or not (high is None or _is_int(high)):
                raise self.fail(p, "min and max must be integers (max may be null)")
            graph.symbols[name] = SymbolRange(low, high)
        graph.meta = self.literal(self.obj(data.get("meta") or {}, f"{path}.meta"))
        if data.get("init") is not None:
            graph.init = self.read_graph(data["init"], f"{path}.init")
        self.check_counts(graph, len(outputs), path)
        return graph

    def upgrade_mutations(self, graph: Graph, path: str) -> None:
        """Version 1 kept mutated buffers as trailing outputs named in ``meta.mutations``: make them updates."""
        mutations = graph.meta.pop("mutations", None)
        if not mutations:
            return
        outputs = graph.outputs
        taken: set[int] = set()
        for i, item in enumerate(self.lst(mutations, path)):
            item = self.obj(item, f"{path}[{i}]", ("kind", "target", "output"))
            index = item["output"]
            if not _is_int(index) or not 0 <= index < len(outputs):
                raise self.fail(f"{path}[{i}].output", f"output index {index!r} out of range")
            kind = "input" if item["kind"] == "user_input_mutation" else "buffer"
            target = self.string(item["target"], f"{path}[{i}].target")
            self.guard(f"{path}[{i}]", lambda: graph.add_state_update(kind, target, outputs[index]))
            taken.add(index)
        graph.set_outputs([v for i, v in enumerate(outputs) if i not in taken])

    def check_counts(self, graph: Graph, n_outputs: int, path: str) -> None:
        for key, limit, kind in (
            ("input_structure", len(graph.inputs), "input"),
            ("output_structure", n_outputs, "output"),
        ):
            structure = getattr(graph, key)
            if structure is None:
                continue
            for leaf in iter_leaves(structure):
                if leaf["kind"] == kind and not 0 <= leaf["index"] < limit:
                    raise self.fail(f"{path}.{key}", f"{kind} index {leaf['index']} out of range (0..{limit - 1})")

    def read_weight(self, graph: Graph, item: Any, path: str) -> None:
        if isinstance(item, str):
            if item not in self.shared:
                raise self.fail(path, f"weight {item!r} is not in the program's weight table ($.weights)")
            item = self.shared[item]
        item = self.obj(item, path, ("name", "kind"))
        name = self.string(item["name"], f"{path}.name")
        kind = item["kind"]
        if kind not in WEIGHT_KINDS:
            raise self.fail(f"{path}.kind", f"unknown weight kind {kind!r}; expected one of {WEIGHT_KINDS}")
        aliases = self.lst(item.get("aliases", []), f"{path}.aliases")
        for j, alias in enumerate(aliases):
            self.string(alias, f"{path}.aliases[{j}]")
        persistent = item.get("persistent", True)
        if not isinstance(persistent, bool):
            raise self.fail(f"{path}.persistent", f"expected true or false, got {_kind(persistent)}")
        type_ = self.read_type(item.get("type"), f"{path}.type")
        data = self.literal(item.get("data"))
        self.guard(path, lambda: graph.add_weight(name, type_, kind, aliases, persistent, data))

    def read_node(self, graph: Graph, item: Any, path: str) -> None:
        item = self.obj(item, path, ("name", "op", "outputs"))
        name = self.string(item["name"], f"{path}.name")
        op_type = self.string(item["op"], f"{path}.op")
        args = [
            self.arg(graph, a, f"{path}.args[{j}]", top=True)
            for j, a in enumerate(self.lst(item.get("args", []), f"{path}.args"))
        ]
        attrs = {k: self.literal(v) for k, v in self.obj(item.get("attrs", {}), f"{path}.attrs").items()}
        names, types = [], []
        for j, out in enumerate(self.lst(item["outputs"], f"{path}.outputs")):
            p = f"{path}.outputs[{j}]"
            out = self.obj(out, p, ("name",))
            names.append(self.string(out["name"], f"{p}.name"))
            types.append(self.read_type(out.get("type"), f"{p}.type"))
        meta = self.literal(self.obj(item.get("meta", {}), f"{path}.meta"))
        node = self.guard(
            path, lambda: graph.create_node(op_type, args, attrs, types, name=name, output_names=names, meta=meta)
        )
        if "regions" in item or op_type in REGION_OPS:
            self.read_regions(node, item.get("regions", []), f"{path}.regions")

    def read_regions(self, node: Node, data: Any, path: str) -> None:
        """A region op's nested graphs (schema version 2), checked against the op's contract."""
        for j, region in enumerate(self.lst(data, path)):
            p = f"{path}[{j}]"
            region = self.obj(region, p, ("inputs", "nodes", "outputs"))
            extra = sorted(set(region) - set(REGION_KEYS))
            if extra:
                raise self.fail(p, f"a region holds only {', '.join(REGION_KEYS)}; unexpected key {extra[0]!r}")
            node.regions.append(self.read_graph({"weights": [], **region}, p))
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
        return self.literal(value)

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

    def read_type(self, data: Any, path: str) -> ValueType | None:
        if data is None:
            return None
        data = self.obj(data, path)
        if "scalar" in data:
            if data["scalar"] not in SCALAR_KINDS:
                raise self.fail(f"{path}.scalar", f"unknown scalar kind {data['scalar']!r}")
            return ScalarType(data["scalar"])
        self.obj(data, path, ("shape", "dtype"))
        if not isinstance(data["dtype"], str) or data["dtype"] not in DTYPES:
            raise self.fail(f"{path}.dtype", f"unknown dtype {data['dtype']!r}")
        shape = self.lst(data["shape"], f"{path}.shape")
        for j, dim in enumerate(shape):
            if not (_is_int(dim) or (isinstance(dim, str) and dim)):
                raise self.fail(f"{path}.shape[{j}]", f"expected an integer or a symbol, got {dim!r}")
            if _is_int(dim) and dim < 0:
                raise self.fail(f"{path}.shape[{j}]", f"negative dimension {dim}")
        return TensorType(tuple(shape), data["dtype"])

    def read_structure(self, data: Any, path: str, leaf: str) -> dict[str, Any] | None:
        if data is None:
            return None
        data = self.obj(data, path, ("kind",))
        kind = data["kind"]
        if kind in CONTAINER_KINDS:
            items = self.lst(data.get("items"), f"{path}.items")
            keys = data.get("keys")
            if keys is not None and (not isinstance(keys, list) or len(keys) != len(items)):
                raise self.fail(f"{path}.keys", "keys must be a list as long as items")
            out: dict[str, Any] = {"kind": kind}
            if "class" in data:
                out["class"] = self.string(data["class"], f"{path}.class")
            if keys is not None:
                out["keys"] = list(keys)
            out["items"] = [self.read_structure(x, f"{path}.items[{j}]", leaf) for j, x in enumerate(items)]
            return out
        if kind not in LEAF_KINDS:
            raise self.fail(f"{path}.kind", f"unknown structure kind {kind!r}")
        if kind == "constant":
            return {"kind": "constant", "value": self.literal(data.get("value"))}
        if kind != leaf:
            raise self.fail(f"{path}.kind", f"{kind!r} leaf in the {leaf} structure")
        if not _is_int(data.get("index")):
            raise self.fail(f"{path}.index", "expected an integer index")
        return {"kind": kind, "index": data["index"]}

    def literal(self, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"float"} and isinstance(value["float"], str) and value["float"] in _NON_FINITE:
                return _NON_FINITE[value["float"]]
            return {k: self.literal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.literal(v) for v in value]
        return value

    def guard(self, path: str, action: Any) -> Any:
        try:
            return action()
        except IRError as exc:
            raise self.fail(path, str(exc)) from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )
