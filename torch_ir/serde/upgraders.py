"""Upgraders: documents of every older version, brought to the current one.

Each step takes a decoded document of version N and returns one of version N+1 (plain dicts and lists,
nothing executed). Version 5 to 6 turns the single ``graph`` into a module with one function; a version 5
program (``entries``, each with its own derived weights and init graph) becomes one document per entry,
which the reader merges into one module (``Module.program``). Errors found on the way name the old JSON
paths: ``paths`` maps a prefix of the new document back to where the user's file has it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch_ir.errors import SerializationError
from torch_ir.serde.schema import FORMAT_NAME, SCHEMA_VERSION


@dataclass
class Upgraded:
    """A document brought to the current version.

    ``documents`` is one document, or one per entry of a version 5 program (``entries`` names them, and
    ``state`` and ``table`` are the program's own, checked by the reader); ``paths`` maps JSON path prefixes
    of the new documents to the user's file (``$.module.functions[0].graph`` -> ``$.graph``), per document.
    """

    documents: list[dict[str, Any]]
    entries: list[str] = field(default_factory=list)
    paths: list[list[tuple[str, str]]] = field(default_factory=list)
    state: list[Any] = field(default_factory=list)
    table: list[Any] = field(default_factory=list)
    version: int = SCHEMA_VERSION


def upgrade(doc: dict[str, Any], source: str) -> Upgraded:
    """Bring ``doc`` (its ``schema_version`` already checked to be 1..current) to the current version."""
    version = doc["schema_version"]
    if version == SCHEMA_VERSION:
        return Upgraded([doc], paths=[[]])
    if version == 1:
        doc = _v1_to_v2(doc, source)
    # versions 2, 3, 4 and 5 only added fields that older files lack: nothing to change up to 5
    result = _v5_to_v6(doc, source)
    result.version = version
    return result


def _fail(source: str, path: str, message: str) -> SerializationError:
    return SerializationError(f"{source}: {path}: {message}")


def _v1_to_v2(doc: dict[str, Any], source: str) -> dict[str, Any]:
    """Version 1 kept mutated buffers as trailing outputs named in ``graph.meta.mutations``: state updates now."""
    graph = doc.get("graph")
    if not isinstance(graph, dict) or not isinstance(graph.get("meta"), dict):
        return doc
    meta = dict(graph["meta"])
    mutations = meta.pop("mutations", None)
    if not mutations:
        return doc
    path = "$.graph.meta.mutations"
    outputs = graph.get("outputs")
    if not isinstance(mutations, list) or not isinstance(outputs, list):
        raise _fail(source, path, "expected a list of {kind, target, output} and a list of outputs")
    updates = list(graph.get("state_updates") or [])
    taken: set[int] = set()
    for i, item in enumerate(mutations):
        if not isinstance(item, dict) or not {"kind", "target", "output"} <= set(item):
            raise _fail(source, f"{path}[{i}]", "expected an object with kind, target and output")
        index = item["output"]
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(outputs):
            raise _fail(source, f"{path}[{i}].output", f"output index {index!r} out of range")
        kind = "input" if item["kind"] == "user_input_mutation" else "buffer"
        updates.append({"kind": kind, "target": item["target"], "value": outputs[index]})
        taken.add(index)
    graph = {**graph, "meta": meta, "state_updates": updates}
    graph["outputs"] = [v for i, v in enumerate(outputs) if i not in taken]
    return {**doc, "graph": graph}


_GRAPH_DEFAULTS = ("state_updates", "symbols", "meta", "input_structure", "output_structure", "weights", "init")


def _graph_v6(graph: Any) -> Any:
    """A version 5 graph object as version 6 writes one: null where 6 has a default becomes absent."""
    if not isinstance(graph, dict):
        return graph
    out = {k: v for k, v in graph.items() if not (k in _GRAPH_DEFAULTS and v is None)}
    if isinstance(out.get("nodes"), list):
        out["nodes"] = [_node_v6(n) for n in out["nodes"]]
    return out


def _node_v6(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: v for k, v in node.items() if not (k in ("args", "attrs", "meta", "regions") and v is None)}
    if isinstance(out.get("regions"), list):
        out["regions"] = [_graph_v6(r) for r in out["regions"]]
    return out


def _header(doc: dict[str, Any]) -> dict[str, Any]:
    keys = ("producer", "torch_version", "model", "stages", "pass_log")
    out: dict[str, Any] = {"format": doc.get("format", FORMAT_NAME), "schema_version": SCHEMA_VERSION}
    out.update({k: doc[k] for k in keys if k in doc and doc[k] is not None})
    return out


def _single_v6(graph: Any, header: dict[str, Any], name: str) -> dict[str, Any]:
    """A version 5 graph (with its weights and init graph) as a version 6 module of one function."""
    graph = _graph_v6(graph)
    if not isinstance(graph, dict):
        return {**header, "module": {"functions": [{"name": name, "graph": graph}]}}
    body = {k: v for k, v in graph.items() if k not in ("weights", "init")}
    module: dict[str, Any] = {"weights": graph.get("weights", []), "functions": [{"name": name, "graph": body}]}
    if graph.get("init") is not None:
        module["init"] = _graph_v6(graph["init"])
    return {**header, "module": module}


def _v5_to_v6(doc: dict[str, Any], source: str) -> Upgraded:
    header = _header(doc)
    if "entries" not in doc:
        if "graph" not in doc:
            raise _fail(source, "$", "missing key 'graph'")
        paths = [
            ("$.module.functions[0].graph", "$.graph"),
            ("$.module.weights", "$.graph.weights"),
            ("$.module.init", "$.graph.init"),
            ("$.module", "$.graph"),
        ]
        return Upgraded([_single_v6(doc["graph"], header, "forward")], paths=[paths])
    entries = doc["entries"]
    if not isinstance(entries, dict) or not entries:
        raise _fail(source, "$.entries", "expected an object of named entry graphs")
    table = doc.get("weights", [])
    if not isinstance(table, list):
        raise _fail(source, "$.weights", "expected a list")
    by_name = {w.get("name"): w for w in table if isinstance(w, dict)}
    result = Upgraded([], state=doc.get("state", []), table=table)
    for index, (name, graph) in enumerate(entries.items()):
        if not isinstance(graph, dict):
            raise _fail(source, f"$.entries.{name}", "expected a graph object")
        weights = []
        for j, item in enumerate(graph.get("weights") or []):
            if isinstance(item, str):
                if item not in by_name:
                    raise _fail(
                        source,
                        f"$.entries.{name}.weights[{j}]",
                        f"weight {item!r} is not in the program's weight table ($.weights)",
                    )
                weights.append(by_name[item])
            else:
                weights.append(item)
        entry_header = {**header, "pass_log": []} if index else header  # the log belongs to the program once
        entry_header = {k: v for k, v in entry_header.items() if k != "stages" or not index}
        result.documents.append(_single_v6({**graph, "weights": weights}, entry_header, name))
        result.entries.append(name)
        result.paths.append(
            [
                ("$.module.functions[0].graph", f"$.entries.{name}"),
                ("$.module.weights", f"$.entries.{name}.weights"),
                ("$.module.init", f"$.entries.{name}.init"),
                ("$.module", f"$.entries.{name}"),
            ]
        )
    return result


__all__ = ["Upgraded", "upgrade"]
