"""The input and output structure of a model (args, kwargs, tuples, dicts, model-output classes).

A structure is plain JSON: containers ``{"kind": "tuple" | "list" | "dict" | "namedtuple" | "custom",
"items": [...], "keys": [...], "class": "module.Qualname"}`` and leaves ``{"kind": "input" | "output",
"index": i}`` (a graph input or output by position) or ``{"kind": "constant", "value": ...}``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch_ir.errors import IRError

CONTAINER_KINDS = ("tuple", "list", "dict", "namedtuple", "custom")
LEAF_KINDS = ("input", "output", "constant")


def spec_to_structure(spec: Any, leaves: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """Turn a torch pytree ``TreeSpec`` into a structure, taking leaves in order from ``leaves``."""
    if spec.is_leaf():
        return next(leaves)
    items = [spec_to_structure(child, leaves) for child in spec.children()]
    type_ = spec.type
    if type_ is tuple:
        return {"kind": "tuple", "items": items}
    if type_ is list:
        return {"kind": "list", "items": items}
    if isinstance(type_, type) and issubclass(type_, dict) and type_.__module__ in ("builtins", "collections"):
        return {"kind": "dict", "keys": [_key(k) for k in spec.context], "items": items}
    name = f"{type_.__module__}.{type_.__qualname__}"
    if isinstance(type_, type) and issubclass(type_, tuple) and hasattr(type_, "_fields"):
        return {"kind": "namedtuple", "class": name, "keys": list(type_._fields), "items": items}
    context = spec.context
    keys = [_key(k) for k in context] if isinstance(context, (list, tuple)) else None
    node: dict[str, Any] = {"kind": "custom", "class": name}
    if keys is not None and len(keys) == len(items):
        node["keys"] = keys
    node["items"] = items
    return node


def _key(key: Any) -> str | int:
    return key if isinstance(key, (str, int)) and not isinstance(key, bool) else str(key)


def iter_leaves(structure: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield the leaves of a structure in order."""
    if structure["kind"] in CONTAINER_KINDS:
        for item in structure["items"]:
            yield from iter_leaves(item)
    else:
        yield structure


def rebuild(structure: dict[str, Any], values: Sequence[Any], leaf_kind: str = "output") -> Any:
    """Rebuild a nested result from flat ``values``; model-output classes come back as dicts."""
    kind = structure["kind"]
    if kind == leaf_kind:
        return values[structure["index"]]
    if kind == "constant":
        return structure.get("value")
    if kind not in CONTAINER_KINDS:
        raise IRError(f"structure leaf of kind {kind!r} where {leaf_kind!r} was expected")
    items = [rebuild(item, values, leaf_kind) for item in structure["items"]]
    if kind == "tuple":
        return tuple(items)
    if kind == "list":
        return items
    keys = structure.get("keys")
    if keys is not None:
        return dict(zip(keys, items))
    return tuple(items)


def flatten_inputs(structure: dict[str, Any] | None, args: Sequence[Any], kwargs: dict[str, Any]) -> list[Any]:
    """Pick the graph inputs, in order, out of a call's ``args`` and ``kwargs`` using the input structure."""
    if structure is None:
        return list(args)
    found: dict[int, Any] = {}
    _match(structure, (tuple(args), dict(kwargs)), found, "inputs")
    return [found[i] for i in sorted(found)]


def _match(structure: dict[str, Any], obj: Any, found: dict[int, Any], path: str) -> None:
    kind = structure["kind"]
    if kind == "input":
        found[structure["index"]] = obj
        return
    if kind == "constant":
        return
    items = structure["items"]
    keys = structure.get("keys")
    if kind == "dict" or (keys is not None and isinstance(obj, dict)):
        if not isinstance(obj, dict):
            raise IRError(f"{path}: expected a dict with keys {keys}, got {type(obj).__name__}")
        for key, item in zip(keys or [], items):
            if key not in obj:
                if _all_constant(item):
                    continue
                raise IRError(f"{path}: missing key {key!r}")
            _match(item, obj[key], found, f"{path}[{key!r}]")
        return
    if not isinstance(obj, (list, tuple)):
        raise IRError(f"{path}: expected a sequence of {len(items)} items, got {type(obj).__name__}")
    if len(obj) != len(items):
        raise IRError(f"{path}: expected {len(items)} items, got {len(obj)}")
    for i, (item, sub) in enumerate(zip(items, obj)):
        _match(item, sub, found, f"{path}[{i}]")


def _all_constant(structure: dict[str, Any]) -> bool:
    return all(leaf["kind"] == "constant" for leaf in iter_leaves(structure))
