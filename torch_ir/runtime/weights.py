"""Weight binding: find every weight an IR reads in a state_dict, a module, or ``.safetensors`` files.

Sources are read lazily: a safetensors file is memory-mapped and a tensor is read only when the IR needs
it. Names resolve through ``Weight.aliases`` (tied weights), inline constants (``Weight.data``) are used
when present, and every problem (missing, unexpected, wrong shape, wrong dtype) is listed in one
``WeightError``. ``export_weights`` writes exactly what the IR reads, after the init graph, for a backend.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

import torch

from torch_ir.errors import WeightError
from torch_ir.ir.graph import Graph, Weight
from torch_ir.ir.module import IR

SAFETENSORS_DTYPES: dict[str, str] = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "U16": "uint16",
    "U32": "uint32",
    "U64": "uint64",
    "BOOL": "bool",
    "C64": "complex64",
}


class WeightSource:
    """A read-only, lazy collection of named tensors."""

    description = "weights"

    def keys(self) -> list[str]:
        """Every tensor name the source holds."""
        raise NotImplementedError

    def __contains__(self, key: object) -> bool:
        return key in set(self.keys())

    def info(self, key: str) -> tuple[tuple[int, ...], str]:
        """The shape and dtype name of ``key`` without reading its data."""
        tensor = self.load(key)
        return tuple(tensor.shape), _dtype_name(tensor.dtype)

    def load(self, key: str) -> torch.Tensor:
        """The tensor called ``key``."""
        raise NotImplementedError


class MappingSource(WeightSource):
    """A ``state_dict`` or any mapping from names to tensors."""

    def __init__(self, mapping: Mapping[str, Any], description: str = "state_dict"):
        self.mapping = mapping
        self.description = description
        self._keys = set(mapping.keys())

    def keys(self) -> list[str]:
        return list(self.mapping.keys())

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def info(self, key: str) -> tuple[tuple[int, ...], str]:
        tensor = self.mapping[key]
        if not isinstance(tensor, torch.Tensor):
            raise WeightError(f"{self.description}[{key!r}] is a {type(tensor).__name__}, not a tensor")
        return tuple(tensor.shape), _dtype_name(tensor.dtype)

    def load(self, key: str) -> torch.Tensor:
        return self.mapping[key]


class ModuleSource(MappingSource):
    """A module's parameters and buffers, non-persistent buffers and tied names included."""

    def __init__(self, module: torch.nn.Module):
        named: dict[str, torch.Tensor] = dict(module.named_parameters(remove_duplicate=False))
        named.update(module.named_buffers(remove_duplicate=False))
        super().__init__(named, f"module {type(module).__name__}")
        self.module = module


class SafetensorsSource(WeightSource):
    """One or more ``.safetensors`` files, memory-mapped; a sharded ``*.index.json`` or a folder works too."""

    def __init__(self, path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]):
        from safetensors import safe_open

        files = _safetensors_files(path)
        self.description = ", ".join(str(f) for f in files) if len(files) <= 3 else f"{len(files)} safetensors files"
        self._handles: dict[str, Any] = {}
        self._where: dict[str, Any] = {}
        for file in files:
            try:
                handle = safe_open(str(file), framework="pt", device="cpu")
                names = list(handle.keys())
            except Exception as exc:  # SafetensorError, OSError: a corrupt or unreadable file
                raise WeightError(
                    f"cannot read safetensors file {file}: {exc}. Is it a complete .safetensors file?"
                ) from None
            self._handles[str(file)] = handle
            for name in names:
                self._where[name] = (handle, str(file))

    def keys(self) -> list[str]:
        return list(self._where)

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def info(self, key: str) -> tuple[tuple[int, ...], str]:
        handle, file = self._where[key]
        try:
            part = handle.get_slice(key)
            dtype = part.get_dtype()
            return tuple(part.get_shape()), SAFETENSORS_DTYPES.get(dtype, dtype.lower())
        except Exception as exc:
            raise WeightError(f"cannot read tensor {key!r} from {file}: {exc}") from None

    def load(self, key: str) -> torch.Tensor:
        handle, file = self._where[key]
        try:
            return handle.get_tensor(key)
        except Exception as exc:
            raise WeightError(f"cannot read tensor {key!r} from {file}: {exc}") from None


class ChainSource(WeightSource):
    """Several sources, the first holding a name wins."""

    def __init__(self, *sources: WeightSource):
        self.sources = sources
        self.description = " + ".join(s.description for s in sources)

    def keys(self) -> list[str]:
        return list(dict.fromkeys(k for s in self.sources for k in s.keys()))

    def __contains__(self, key: object) -> bool:
        return any(key in s for s in self.sources)

    def _first(self, key: str) -> WeightSource:
        return next(s for s in self.sources if key in s)

    def info(self, key: str) -> tuple[tuple[int, ...], str]:
        return self._first(key).info(key)

    def load(self, key: str) -> torch.Tensor:
        return self._first(key).load(key)


WeightsLike = Union[WeightSource, Mapping[str, Any], torch.nn.Module, str, os.PathLike]


def as_source(weights: Any) -> WeightSource:
    """Wrap a state_dict, a module, a path (``.safetensors``, ``.index.json``, a folder) or a list of paths."""
    if isinstance(weights, WeightSource):
        return weights
    if isinstance(weights, torch.nn.Module):
        return ModuleSource(weights)
    if isinstance(weights, Mapping):
        return MappingSource(weights)
    if isinstance(weights, (str, os.PathLike)) or (
        isinstance(weights, (list, tuple)) and weights and all(isinstance(w, (str, os.PathLike)) for w in weights)
    ):
        return SafetensorsSource(weights)
    raise WeightError(
        f"cannot read weights from a {type(weights).__name__}: pass a state_dict, an nn.Module, "
        "or the path of a .safetensors file (or of a sharded model.safetensors.index.json)"
    )


def _safetensors_files(path: Any) -> list[Path]:
    if isinstance(path, (list, tuple)):
        return [f for p in path for f in _safetensors_files(p)]
    path = Path(path)
    if path.is_dir():
        index = sorted(path.glob("*.safetensors.index.json"))
        if index:
            return _safetensors_files(index[0])
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise WeightError(f"no .safetensors file in folder {path}")
        return files
    if not path.exists():
        raise WeightError(f"weights file {path} does not exist")
    if path.name.endswith(".json"):
        try:
            weight_map = json.loads(path.read_text())["weight_map"]
            shards = list(dict.fromkeys(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WeightError(f"{path} is not a safetensors index (expected a 'weight_map' object): {exc}") from None
        files = [path.parent / shard for shard in shards]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise WeightError(f"{path} names shards that do not exist: {', '.join(missing)}")
        return files
    return [path]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _graph_of(ir: IR | Graph) -> Graph:
    return ir.graph if isinstance(ir, IR) else ir


def required_weights(ir: IR | Graph) -> list[Weight]:
    """The weights that must come from outside: the graph's non-derived ones and the init graph's."""
    graph = _graph_of(ir)
    found: dict[str, Weight] = {}
    for weight in graph.weights.values():
        if weight.kind != "derived":
            found.setdefault(weight.name, weight)
    if graph.init is not None:
        for weight in graph.init.weights.values():
            found.setdefault(weight.name, weight)
    return list(found.values())


def inline_value(weight: Weight) -> torch.Tensor:
    """The tensor of a weight whose value is stored in the IR (``Weight.data``: a JSON list, or base64 bytes)."""
    dtype = getattr(torch, weight.dtype) if weight.dtype else None
    data = weight.data
    if isinstance(data, dict):
        return _decode_bytes(weight, data, dtype)
    try:
        tensor = torch.tensor(data, dtype=dtype)
        if weight.type is not None and all(isinstance(d, int) for d in weight.shape or ()):
            tensor = tensor.reshape(weight.shape)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        raise WeightError(
            f"weight {weight.name}: its inline data does not make a tensor of type {weight.type}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        ) from None
    return tensor


def _decode_bytes(weight: Weight, data: dict[str, Any], dtype: torch.dtype | None) -> torch.Tensor:
    shape = weight.shape
    if (
        data.get("encoding") != "base64"
        or not isinstance(data.get("bytes"), str)
        or dtype is None
        or shape is None
        or not all(isinstance(d, int) for d in shape)
    ):
        raise WeightError(f"weight @{weight.name}: stored data must be base64 bytes of a statically shaped tensor")
    try:
        raw = base64.b64decode(data["bytes"], validate=True)
    except (ValueError, TypeError) as exc:
        raise WeightError(f"weight @{weight.name}: stored data is not valid base64 ({exc})") from None
    numel = math.prod(shape)  # type: ignore[arg-type]
    itemsize = torch.empty((), dtype=dtype).element_size()
    if len(raw) != numel * itemsize:
        raise WeightError(
            f"weight @{weight.name}: stored data has {len(raw)} bytes, {weight.type} needs {numel * itemsize}"
        )
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape)  # type: ignore[arg-type]


def resolve_weights(
    ir: IR | Graph, weights: Any, *, device: str | torch.device = "cpu", strict: bool = True
) -> dict[str, torch.Tensor]:
    """The tensors of every required weight, by IR name, on ``device``.

    Raises ``WeightError`` listing every missing key, every unexpected key (when ``strict``) and every
    shape or dtype mismatch at once.
    """
    source = as_source(weights) if weights is not None else MappingSource({}, "no weights")
    needed = required_weights(ir)
    keys: dict[str, str] = {}
    missing: list[str] = []
    for weight in needed:
        if weight.data is not None:
            continue
        key = next((n for n in weight.names if n in source), None)
        if key is None:
            aka = f" (aliases: {', '.join(weight.aliases)})" if weight.aliases else ""
            kind = "" if weight.persistent else " [non-persistent: not in a state_dict; pass the module]"
            made_at = _graph_of(ir).meta.get("unknown_constants", {}).get(weight.name)
            if made_at:
                kind = (
                    f" [a constant made in forward at {made_at}; the IR was traced without its value: "
                    "extract again with device='cpu' (the default)]"
                )
            missing.append(f"{weight.name}{aka}{kind}")
        else:
            keys[weight.name] = key
    problems: list[str] = []
    if missing:
        problems.append(f"missing ({len(missing)}): " + ", ".join(missing))
    if strict:
        known = {n for w in needed for n in w.names} | set(_graph_of(ir).meta.get("unused_weights", ()))
        unexpected = [k for k in source.keys() if k not in known]
        if unexpected:
            problems.append(f"unexpected ({len(unexpected)}): " + ", ".join(unexpected))
    shape_errors: list[str] = []
    dtype_errors: list[str] = []
    by_name = {w.name: w for w in needed}
    for name, key in keys.items():
        weight = by_name[name]
        if weight.type is None:
            continue
        shape, dtype = source.info(key)
        want = weight.shape or ()
        if len(shape) != len(want) or any(isinstance(w, int) and w != s for w, s in zip(want, shape)):
            shape_errors.append(f"{key}: expected {list(want)}, got {list(shape)}")
        if weight.dtype != dtype:
            dtype_errors.append(f"{key}: expected {weight.dtype}, got {dtype}")
    if shape_errors:
        problems.append(f"wrong shape ({len(shape_errors)}): " + "; ".join(shape_errors))
    if dtype_errors:
        problems.append(f"wrong dtype ({len(dtype_errors)}): " + "; ".join(dtype_errors))
    if problems:
        raise WeightError(f"weights from {source.description} do not fit the IR:\n  " + "\n  ".join(problems))
    device = torch.device(device)
    out: dict[str, torch.Tensor] = {}
    no_data: list[str] = []
    for weight in needed:
        tensor = inline_value(weight) if weight.data is not None else source.load(keys[weight.name])
        if tensor.is_meta and device.type != "meta":
            no_data.append(keys.get(weight.name, weight.name))
            continue
        out[weight.name] = tensor.detach().to(device)
    if no_data:
        raise WeightError(
            f"weights from {source.description} have no data: {len(no_data)} tensor(s) are on the meta device "
            f"({', '.join(no_data[:8])}{', ...' if len(no_data) > 8 else ''}). Pass real weights: a state_dict of "
            "a model built on the CPU, or a .safetensors file"
        )
    return out


def bind_weights(
    ir: IR | Graph, weights: Any, *, device: str | torch.device = "cpu", strict: bool = True, policy: Any = None
) -> dict[str, torch.Tensor]:
    """Every weight the main graph reads, by IR name: resolved from ``weights``, derived ones by the init graph.

    ``policy`` (a ``torch_ir.runtime.sandbox.ExecutionPolicy``) governs what the init graph may do.
    """
    graph = _graph_of(ir)
    resolved = resolve_weights(graph, weights, device=device, strict=strict)
    if graph.init is not None:
        from torch_ir.runtime.interpreter import run_init_graph

        resolved.update(run_init_graph(graph.init, resolved, device=device, policy=policy))
    return {name: resolved[name] for name in graph.weights}


def export_weights(ir: IR | Graph, weights: Any, path: str | os.PathLike[str], *, strict: bool = True) -> list[str]:
    """Write exactly the weights the IR's main graph reads (after the init graph) to a safetensors file.

    Tensors are named as the IR names them; the file is written atomically. Returns the names written.
    """
    from safetensors.torch import save

    from torch_ir.serde.files import atomic_write_bytes

    bound = bind_weights(ir, weights, device="cpu", strict=strict)
    seen: set[tuple[int, int]] = set()
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in bound.items():
        tensor = tensor.detach().contiguous()
        key = (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
        if key in seen or tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
            tensor = tensor.clone()
        seen.add(key)
        tensors[name] = tensor
    graph = _graph_of(ir)
    metadata = {"format": "pt", "torch_ir_model": str(graph.meta.get("model", "model"))}
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return list(tensors)


__all__ = [
    "ChainSource",
    "MappingSource",
    "ModuleSource",
    "SafetensorsSource",
    "WeightSource",
    "as_source",
    "bind_weights",
    "export_weights",
    "inline_value",
    "required_weights",
    "resolve_weights",
]
