"""Repeated blocks of a model, traced as calls: the children of a module list that look alike.

A decoder is N copies of one layer. Before the model is traced, the children of its module lists (any
module whose name ends in an index, under a parent with two or more such children, the outermost ones) are
grouped by what makes their code the same: class, parameter and buffer names, shapes and dtypes, and the
plain attributes of the block and its submodules (an attention type, a sliding window), index attributes
such as ``layer_idx`` left out. During the trace each grouped block's ``forward`` goes through one custom op,
``torch_ir::block_call(function, args)``, instead of its ops: the op's fake kernel runs the first block of a
function (a group called with one signature: argument structure, shapes, dtypes and constant arguments)
once, on the fake inputs the model gives it, and hands every later call fresh fakes of the same outputs.
The block's weights are not operands of the op: torch.export lifts every parameter and buffer of the model
whatever reads it, and a call binds its block's weights by name when it is converted.

Uniformity is checked, not assumed: the fake kernel also runs the second and the last block of each
function, records the ATen ops each block runs (with inputs, weights by their name in the block, shapes and
constants) and compares the records with the first block's. A block that differs (code that depends on its
index, per-block Python state), one called twice, one whose arguments the op cannot carry (a symbolic int,
an object), or one whose outputs are not tensors marks its group as failed, and
``torch_ir.frontends.functions`` traces the model again with that group inline.

A block given a KV cache (an object with per-layer tensors, as transformers' ``StaticCache``) passes its
layer's cache tensors through the op and gets their new values back as extra results, which the caller
writes back into the cache, so the body stays a function: state passed in and returned.
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

BLOCK_OP_TYPE = "torch_ir.block_call.default"
"""The op type the custom op has in a converted graph, before calls replace it."""

INDEX_ATTRIBUTES = frozenset(
    {"layer_idx", "layer_id", "layer_index", "layer_number", "layer_num", "block_idx", "block_index", "idx"}
)
"""Attributes that number a block in its list: left out of the grouping (the recorded traces catch a block
whose code reads them)."""

_INDEXED = re.compile(r"^(?P<parent>.+)\.(?P<index>\d+)$")
_PLAIN = (bool, int, float, str, type(None))

_LIB = torch.library.Library("torch_ir", "DEF")
_LIB.define("block_call(str function, Tensor?[] args) -> Tensor[]")


def _never_run(function: str, args: list[Any]) -> list[torch.Tensor]:
    raise RuntimeError("torch_ir::block_call only stands for a block while a model is traced; it never runs")


_LIB.impl("block_call", _never_run, "CompositeExplicitAutograd")


class Unsupported(Exception):
    """Why one call of a block cannot be a call of a traced function."""


@dataclass
class BlockGroup:
    """Blocks that look alike before tracing: one class, the same weights' shapes, the same attributes."""

    index: int
    members: list[tuple[str, torch.nn.Module]]
    failed: str = ""
    """Why the group is traced inline ('' while it is not)."""

    @property
    def last(self) -> str:
        """The module path of the group's last block (run and compared with the first, as the second is)."""
        return self.members[-1][0]


@dataclass
class BlockCall:
    """One call of a block during the trace."""

    path: str
    function: TracedFunction


@dataclass
class TracedFunction:
    """One distinct block: the calls of a group with one signature, traced once (by its first block)."""

    index: int
    group: BlockGroup
    signature: Any
    spec: Any
    leaves: list[Any]
    """The flattened ``(args, kwargs)`` of the first call: constants as they are, tensors as ``TENSOR``."""
    arg_names: list[str]
    inputs: list[torch.Tensor]
    """The first call's fake tensor arguments, in order (state slices last)."""
    state: list[str]
    """Names of the cache tensors the block reads and writes (``keys``, ``values``...), passed after ``inputs``."""
    weight_names: list[str]
    representative: str
    module_type: Any
    calls: list[BlockCall] = field(default_factory=list)
    outputs: list[torch.Tensor] | None = None
    out_spec: Any = None
    out_leaves: list[Any] = field(default_factory=list)
    record: tuple[Any, ...] | None = None
    checked: list[str] = field(default_factory=list)


TENSOR = object()
"""Marks a tensor leaf in ``TracedFunction.leaves``."""


@dataclass
class _Pending:
    function: TracedFunction
    path: str
    module: torch.nn.Module
    forward: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    cache: Any


class BlockTrace:
    """The repeated blocks of one model while it is traced: groups, the functions seen, the calls made."""

    def __init__(self, model: torch.nn.Module, skip: set[int] | frozenset[int] = frozenset()):
        self.model = model
        self.groups = [g for g in find_block_groups(model) if g.index not in skip]
        self.functions: list[TracedFunction] = []
        self.calls: list[BlockCall] = []
        self._by_signature: dict[Any, TracedFunction] = {}
        self._called: set[str] = set()
        self._pending: _Pending | None = None

    @property
    def failed(self) -> list[BlockGroup]:
        """The groups that must be traced inline, each with its reason."""
        return [g for g in self.groups if g.failed]

    def fail(self, group: BlockGroup, reason: str) -> None:
        """Mark ``group`` to be traced inline for ``reason`` (the first reason found is kept)."""
        if not group.failed:
            group.failed = reason

    @contextmanager
    def active(self) -> Iterator[BlockTrace]:
        """Within the block, ``torch_ir::block_call`` answers for this trace's functions (a second trace of
        the program, as ``run_decompositions`` makes, gets the outputs the first one found)."""
        previous = getattr(_ACTIVE, "trace", None)
        _ACTIVE.trace = self
        try:
            yield self
        finally:
            _ACTIVE.trace = previous

    @contextmanager
    def patched(self) -> Iterator[BlockTrace]:
        """Within the block, every grouped block's forward goes through ``torch_ir::block_call``."""
        saved: list[tuple[torch.nn.Module, bool, Any]] = []
        with self.active():
            try:
                for group in self.groups:
                    for path, module in group.members:
                        had = "forward" in vars(module)
                        saved.append((module, had, vars(module).get("forward")))
                        module.forward = self._forward(group, path, module, module.forward)
                yield self
            finally:
                for module, had, original in reversed(saved):
                    if had:
                        module.forward = original
                    else:
                        del module.forward

    def _forward(
        self, group: BlockGroup, path: str, module: torch.nn.Module, original: Callable[..., Any]
    ) -> Callable[..., Any]:
        def forward(*args: Any, **kwargs: Any) -> Any:
            if group.failed or self._pending is not None:
                return original(*args, **kwargs)
            if path in self._called:
                self.fail(group, f"{path} is called more than once")
                return original(*args, **kwargs)
            self._called.add(path)
            try:
                function, tensors, cache = self._function_for(group, path, module, original, args, kwargs)
            except Unsupported as exc:
                self.fail(group, f"{path}: {exc}")
                return original(*args, **kwargs)
            self._pending = _Pending(function, path, module, original, args, kwargs, cache)
            try:
                results = torch.ops.torch_ir.block_call(str(function.index), tensors)
            finally:
                self._pending = None
            self.calls.append(BlockCall(path, function))
            function.calls.append(self.calls[-1])
            count = len(results) - len(function.state)
            if function.state:
                layer = _cache_layer(cache, module, path)
                for name, new in zip(function.state, results[count:]):
                    getattr(layer, name).copy_(new)
            leaves = iter(results[:count])
            flat = [next(leaves) if leaf is TENSOR else leaf for leaf in function.out_leaves]
            return pytree.tree_unflatten(flat, function.out_spec)

        return forward

    def _function_for(
        self,
        group: BlockGroup,
        path: str,
        module: torch.nn.Module,
        original: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[TracedFunction, list[torch.Tensor | None], Any]:
        """The function this call belongs to (made on its first call), the op's tensor operands, the cache."""
        flat_with_paths, spec = pytree.tree_flatten_with_path((args, kwargs))
        leaves: list[Any] = []
        tensors: list[torch.Tensor | None] = []
        names: list[str] = []
        constants: list[Any] = []
        metas: list[Any] = []
        cache = None
        parameters = _parameter_names(original)
        for key_path, leaf in flat_with_paths:
            if isinstance(leaf, torch.Tensor):
                leaves.append(TENSOR)
                tensors.append(leaf)
                names.append(_arg_name(key_path, parameters))
                metas.append(_tensor_key(leaf))
            elif _is_cache(leaf):
                if cache is not None:
                    raise Unsupported("it is given two caches")
                cache = leaf
                leaves.append(leaf)
                constants.append("<cache>")
            elif isinstance(leaf, (torch.SymInt, torch.SymFloat, torch.SymBool)):
                raise Unsupported(f"argument {_arg_name(key_path, parameters)} is a symbolic number ({leaf})")
            elif isinstance(leaf, _PLAIN):
                leaves.append(leaf)
                constants.append(leaf)
            else:
                raise Unsupported(
                    f"argument {_arg_name(key_path, parameters)} is a {type(leaf).__name__}, which a call cannot pass"
                )
        state: list[str] = []
        if cache is not None:
            layer = _cache_layer(cache, module, path)
            state = [name for name, value in vars(layer).items() if isinstance(value, torch.Tensor)]
            if not state:
                raise Unsupported("its cache layer holds no tensors")
            for name in state:
                tensor = getattr(layer, name)
                tensors.append(tensor)
                names.append(f"cache.{name}")
                metas.append(_tensor_key(tensor))
        signature = (group.index, spec, repr(constants), tuple(metas), tuple(state))
        function = self._by_signature.get(signature)
        if function is None:
            function = TracedFunction(
                index=len(self.functions),
                group=group,
                signature=signature,
                spec=spec,
                leaves=leaves,
                arg_names=names,
                inputs=[t for t in tensors if t is not None],
                state=state,
                weight_names=[n for n, _ in _named_weights(module)],
                representative=path,
                module_type=type(module),
            )
            self.functions.append(function)
            self._by_signature[signature] = function
        return function, tensors, cache


_ACTIVE = threading.local()


def _fake_block_call(function: str, args: list[Any]) -> list[torch.Tensor]:
    """The fake kernel: the first call of a function runs its block; the second and last blocks of a group
    are run and compared; every call gets fresh fakes of the first call's outputs."""
    trace: BlockTrace | None = getattr(_ACTIVE, "trace", None)
    if trace is None:
        raise RuntimeError("torch_ir::block_call is only traced from a block that torch-ir patched")
    pending = trace._pending
    if pending is None:  # the program traced again: the first trace found the outputs
        outputs = trace.functions[int(function)].outputs
        if outputs is None:
            raise RuntimeError(f"torch_ir::block_call: function {function} was never traced")
        return [torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device) for t in outputs]
    fn = pending.function
    if fn.outputs is None:
        try:
            record, out, state = _run_recorded(trace, pending, args)
        except Exception as exc:  # the block cannot run as a call: trace it inline instead
            trace.fail(fn.group, f"{pending.path} cannot run as a call ({type(exc).__name__}: {exc})")
            raise Retrace(trace.failed[-1].failed) from exc
        flat, fn.out_spec = pytree.tree_flatten(out)
        fn.out_leaves = [TENSOR if isinstance(x, torch.Tensor) else x for x in flat]
        if any(not isinstance(x, (torch.Tensor, *_PLAIN)) for x in flat):
            trace.fail(fn.group, f"{pending.path} returns something other than tensors and constants")
        fn.outputs = [x for x in flat if isinstance(x, torch.Tensor)] + state
        fn.record = record
    elif pending.path not in fn.checked and _worth_checking(fn, pending.path):
        fn.checked.append(pending.path)
        try:
            record, out, _ = _run_recorded(trace, pending, args)
        except Exception as exc:
            trace.fail(fn.group, f"{pending.path} cannot run as a call ({type(exc).__name__}: {exc})")
            return _fresh(fn.outputs)
        flat, out_spec = pytree.tree_flatten(out)
        if record != fn.record or out_spec != fn.out_spec:
            where = _first_difference(fn.record or (), record)
            trace.fail(
                fn.group,
                f"{pending.path} does not compute what {fn.representative} does ({where}): its code depends on "
                "more than its arguments and weights",
            )
    return _fresh(fn.outputs)


class Retrace(Exception):
    """A block failed while the model was traced: trace the model again with its group inline."""


def _fresh(outputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device) for t in outputs]


torch.library.register_fake("torch_ir::block_call", _fake_block_call, lib=_LIB)


def _worth_checking(fn: TracedFunction, path: str) -> bool:
    """The second block a function sees and the group's last block are run and compared."""
    return not fn.checked or path == fn.group.last


def _run_recorded(
    trace: BlockTrace, pending: _Pending, args: list[Any]
) -> tuple[tuple[Any, ...], Any, list[torch.Tensor]]:
    """Run the block's own forward on the fake arguments, recording every ATen op it runs; with a cache, on
    copies of its layer's tensors, whose new contents come back last."""
    from torch._guards import detect_fake_mode

    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    inputs = {id(t): i for i, t in enumerate(tensors)}
    weights = {id(t): name for name, t in _named_weights(pending.module)}  # the fakes torch.export swapped in
    call_args, call_kwargs = pending.args, pending.kwargs
    mode = detect_fake_mode(tensors)
    shape_env = getattr(mode, "shape_env", None)
    ignore = shape_env.ignore_fresh_unbacked_symbols() if shape_env is not None else _nothing()
    state = pending.function.state
    cache: OneLayerCache | None = None
    if pending.cache is not None:
        layer = _cache_layer(pending.cache, pending.module, pending.path)
        copies = {name: getattr(layer, name).clone() for name in state}
        for index, name in enumerate(state):
            inputs[id(copies[name])] = len(tensors) - len(state) + index
        cache = one_layer_cache(layer, copies)
        call_args, call_kwargs = pytree.tree_map(lambda x: cache if _is_cache(x) else x, (call_args, call_kwargs))
    recorder = _OpRecorder(inputs, weights)
    with ignore, recorder:
        out = pending.forward(*call_args, **call_kwargs)
    if recorder.outside:
        trace.fail(
            pending.function.group,
            f"{pending.path} reads a tensor that is neither one of its arguments nor one of its weights (a tensor "
            "attribute, or a constant made in forward)",
        )
    after = [getattr(cache._layer, name) for name in state] if cache is not None else []
    return tuple(recorder.rows), out, after


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _first_difference(a: tuple[Any, ...], b: tuple[Any, ...]) -> str:
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"op {index + 1}: {x[0]} against {y[0]}" if x[0] != y[0] else f"op {index + 1} ({x[0]}) differs"
    return f"{len(a)} ops against {len(b)}"


class _OpRecorder(TorchDispatchMode):
    """Records each ATen op: its name, operands (block inputs, weights by name, earlier results, or the
    metadata and constant value of any other tensor), other arguments, and the results' metadata."""

    def __init__(self, inputs: dict[int, int], weights: dict[int, str]):
        super().__init__()
        self.keys: dict[int, Any] = {k: ("in", v) for k, v in inputs.items()}
        self.keys.update({k: ("w", v) for k, v in weights.items()})
        self.rows: list[Any] = []
        self.outside = False
        """Whether an op read a tensor that is neither an input, a weight, nor a result of an earlier op."""
        self._alive: list[Any] = []

    def _key(self, x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            known = self.keys.get(id(x))
            if known is not None:
                return known
            self.outside = True
            return ("tensor", _tensor_key(x))
        if isinstance(x, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            return ("sym", str(x))
        if isinstance(x, (list, tuple)):
            return tuple(self._key(i) for i in x)
        if isinstance(x, dict):
            return tuple((k, self._key(v)) for k, v in x.items())
        return repr(x)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        row = [str(func), self._key(args), self._key(kwargs)]
        out = func(*args, **kwargs)
        results = out if isinstance(out, (list, tuple)) else [out]
        row.append(tuple(_tensor_key(r) if isinstance(r, torch.Tensor) else repr(r) for r in results))
        for i, r in enumerate(results):
            if isinstance(r, torch.Tensor) and id(r) not in self.keys:
                self.keys[id(r)] = ("t", len(self.rows), i)
                self._alive.append(r)
        self.rows.append(tuple(row))
        return out


class OneLayerCache:
    """Stands for a model's KV cache inside one block: whatever layer index the block asks for, it reads
    and writes the one cache layer it was given (so a block's trace does not depend on its index)."""

    def __init__(self, layer: Any):
        self._layer = layer
        self.layers = _AnyIndex(layer)

    def update(self, key_states: Any, value_states: Any, layer_idx: int, *args: Any, **kwargs: Any) -> Any:
        """transformers' ``Cache.update``: writes the one layer, whatever ``layer_idx`` says."""
        return self._layer.update(key_states, value_states, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"a block traced once reads its cache only through update(); it asked for cache.{name}")


class _AnyIndex:
    def __init__(self, item: Any):
        self._item = item

    def __getitem__(self, index: Any) -> Any:
        return self._item

    def __len__(self) -> int:
        return 1


def one_layer_cache(template: Any, tensors: dict[str, torch.Tensor]) -> OneLayerCache:
    """A ``OneLayerCache`` over a copy of the cache layer ``template`` holding ``tensors`` instead of its own."""
    layer = copy.copy(template)
    for name, tensor in tensors.items():
        setattr(layer, name, tensor)
    return OneLayerCache(layer)


def _is_cache(x: Any) -> bool:
    return hasattr(x, "layers") and callable(getattr(x, "update", None)) and not isinstance(x, torch.nn.Module)


def _cache_layer(cache: Any, module: torch.nn.Module, path: str) -> Any:
    """The layer of ``cache`` that ``module`` uses: its ``layer_idx`` (or its index in its list)."""
    index = block_index(module, path)
    try:
        return cache.layers[index]
    except (IndexError, TypeError, AttributeError) as exc:
        raise Unsupported(f"its cache has no layer {index}") from exc


def block_index(module: torch.nn.Module, path: str) -> int:
    """The index a block has: its (or a submodule's) ``layer_idx``, else its index in its list."""
    for sub in module.modules():
        value = vars(sub).get("layer_idx")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    match = _INDEXED.match(path)
    return int(match.group("index")) if match else 0


def _tensor_key(t: torch.Tensor) -> tuple[Any, ...]:
    return (tuple(str(s) for s in t.shape), str(t.dtype), tuple(str(s) for s in t.stride()), t.device.type)


def _parameter_names(forward: Callable[..., Any]) -> list[str]:
    import inspect

    try:
        return [
            p.name
            for p in inspect.signature(forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return []


def _arg_name(key_path: tuple[Any, ...], parameters: list[str]) -> str:
    """``hidden_states``, ``position_embeddings.0``: where an argument leaf sits in ``(args, kwargs)``."""
    parts: list[str] = []
    for depth, key in enumerate(key_path):
        if depth == 0:
            continue
        item = getattr(key, "idx", getattr(key, "key", getattr(key, "name", key)))
        if depth == 1 and key_path[0].idx == 0 and isinstance(item, int):  # type: ignore[attr-defined]
            item = parameters[item] if item < len(parameters) else f"arg{item}"
        parts.append(str(item))
    name = ".".join(parts) or "arg"
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)


def _named_weights(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    return list(
        itertools.chain(module.named_parameters(remove_duplicate=False), module.named_buffers(remove_duplicate=False))
    )


def find_block_groups(model: torch.nn.Module) -> list[BlockGroup]:
    """The groups of repeated blocks of ``model``, in model order; groups of one block are left out.

    Blocks are the outermost modules named ``parent.<index>`` whose parent has two or more of them.
    """
    candidates: list[tuple[str, torch.nn.Module]] = []

    def visit(prefix: str, module: torch.nn.Module) -> None:
        children = list(module.named_children())
        indexed = [(name, child) for name, child in children if name.isdigit()]
        for name, child in children:
            path = f"{prefix}.{name}" if prefix else name
            if name.isdigit() and prefix and len(indexed) >= 2:
                candidates.append((path, child))
            else:
                visit(path, child)

    visit("", model)
    by_key: dict[Any, BlockGroup] = {}
    for path, module in candidates:
        key = _group_key(module)
        group = by_key.get(key)
        if group is None:
            group = by_key[key] = BlockGroup(len(by_key), [])
        group.members.append((path, module))
    return [g for g in by_key.values() if len(g.members) >= 2]


def _group_key(module: torch.nn.Module) -> Any:
    """What two blocks must share to be one function: class, weights, and the plain attributes of every
    submodule (index attributes left out)."""
    weights = tuple(
        (name, tuple(t.shape), str(t.dtype), isinstance(t, torch.nn.Parameter)) for name, t in _named_weights(module)
    )
    attributes = []
    for name, sub in module.named_modules(remove_duplicate=False):
        plain = tuple(
            sorted(
                (k, repr(v))
                for k, v in vars(sub).items()
                if not k.startswith("_") and k not in INDEX_ATTRIBUTES and _is_plain(v)
            )
        )
        attributes.append((name, type(sub), plain, tuple(getattr(sub, "_non_persistent_buffers_set", ()))))
    return (type(module), weights, tuple(attributes))


def _is_plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (tuple, list)) and len(value) <= 64:
        return all(isinstance(v, _PLAIN) for v in value)
    return False


__all__ = [
    "BLOCK_OP_TYPE",
    "INDEX_ATTRIBUTES",
    "BlockCall",
    "BlockGroup",
    "BlockTrace",
    "OneLayerCache",
    "Retrace",
    "TracedFunction",
    "Unsupported",
    "block_index",
    "find_block_groups",
    "one_layer_cache",
]
