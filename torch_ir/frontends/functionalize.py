"""Functionalization in torch-ir's own IR: writes to tensors become new values and state updates.

torch.export (non-strict) keeps the in-place ops of ``forward``: ``add_``, ``copy_``, ``index_copy_``,
``fill_``, and writes through views (``x[:, 0] = v`` is a ``select`` then a ``copy_``/``fill_``). Rather
than tracing the model a second time (``ExportedProgram.run_decompositions({})``), ``functionalize`` walks
the converted graph once, in order:

- an in-place op ``x.op_(...)`` becomes its functional op (``aten.add_.Tensor`` -> ``aten.add.Tensor``),
  whose result is from then on the content of ``x`` (``x.copy_(y)`` of a ``y`` of the same type: ``y``
  itself); its own result (an alias of ``x``) reads ``x``;
- a write through a view of ``x`` (``slice``, ``select``, ``view``, ``unsqueeze``, ``squeeze``,
  ``permute``, ``transpose``, ``t``, ``alias``, ``expand``, ``diagonal``) writes the new view back into
  ``x`` (``slice_scatter``, ``select_scatter``, ``diagonal_scatter``, or the inverse view);
- a view read after its base was written is taken again from the new content;
- a buffer or parameter written by the graph gets a state update (its final content); an input written
  gets an input state update, or, for a function body (``inputs_as_outputs``), nothing: the body returns
  the input's new content as one of its results.

Aliasing this cannot follow raises ``BeyondFunctionalization``: a write through an op that may or may not
be a view (``reshape``, ``contiguous``, ``to``), through a view op it has no inverse for, a result of such
an op read after its base changed, or an op that writes to more than its first operand. The caller then
functionalizes with ``run_decompositions({})`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch_ir.errors import ExportError
from torch_ir.ir.graph import Graph, Node, Value, Weight
from torch_ir.ir.types import TensorType
from torch_ir.ops import op_info


class BeyondFunctionalization(ExportError):
    """The graph aliases tensors in a way ``functionalize`` does not follow (see the module doc)."""


VIEWS = frozenset(
    {
        "aten.slice.Tensor",
        "aten.select.int",
        "aten.view.default",
        "aten._unsafe_view.default",
        "aten.unsqueeze.default",
        "aten.squeeze.dim",
        "aten.squeeze.dims",
        "aten.squeeze.default",
        "aten.permute.default",
        "aten.transpose.int",
        "aten.t.default",
        "aten.alias.default",
        "aten.expand.default",
        "aten.diagonal.default",
        "aten.detach.default",
    }
)
"""Ops whose result is always a view of their first operand, which ``functionalize`` can take again."""

CONVERSIONS = frozenset({"aten.to.dtype", "aten.to.dtype_layout", "aten.to.device", "aten.to.other"})
"""``to``: its operand itself when nothing changes and no copy is asked for (a view then), else a copy."""

MAYBE_VIEWS = frozenset(
    {
        "aten.reshape.default",
        "aten.contiguous.default",
        "aten.type_as.default",
        "aten.flatten.using_ints",
        "aten.unflatten.int",
        "aten.view_as.default",
        "aten.expand_as.default",
        "aten.reshape_as.default",
        "aten.narrow.default",
        "aten.split.Tensor",
        "aten.split_with_sizes.default",
        "aten.chunk.default",
        "aten.unbind.int",
        "aten.as_strided.default",
        "aten.unfold.default",
        "aten.movedim.int",
        "aten.lift_fresh.default",
    }
)
"""Ops whose result may alias their first operand, as eager decides: a write through them, or a read of them
after their base was written, is beyond ``functionalize``."""

_FUNCTIONAL = {"aten.copy_.default": "aten.copy.default"}


@dataclass
class _Alias:
    """What a value aliases: its root tensor, and the view ops that take it from the root (None when unknown)."""

    root: Value
    chain: list[Node] | None
    version: int


@dataclass
class _State:
    graph: Graph
    current: dict[Value, Value] = field(default_factory=dict)
    """The content a root tensor has now (absent: itself)."""
    versions: dict[Value, int] = field(default_factory=dict)
    aliases: dict[Value, _Alias] = field(default_factory=dict)
    fresh: dict[Value, Value] = field(default_factory=dict)
    """Views taken again after their root changed."""

    def version(self, root: Value) -> int:
        return self.versions.get(root, 0)


def has_writes(graph: Graph) -> bool:
    """Whether a node of ``graph`` (or of a region in it) writes to one of its operands."""
    return any(op_info(node.op_type).mutates for _, node in graph.walk())


def functionalize(graph: Graph, *, inputs_as_outputs: bool = False) -> bool:
    """Rewrite every write of ``graph`` as described in the module doc; True when there was one.

    Raises ``BeyondFunctionalization`` (and leaves the graph half-rewritten: discard it) where aliasing is
    beyond this pass.
    """
    if not has_writes(graph):
        return False
    for path, node in graph.walk():
        if path and op_info(node.op_type).mutates:
            raise BeyondFunctionalization(f"node {path}{node.name} ({node.op_type}) writes inside a region")
    state = _State(graph)
    for node in list(graph.nodes):
        if node.graph is None:
            continue
        first = node.args[0] if node.args else None
        _resolve_operands(state, node)
        info = op_info(node.op_type)
        if info.mutates:
            _rewrite_write(state, node, info.mutates, first)
        elif isinstance(first, Value) and (node.op_type in VIEWS or node.op_type in MAYBE_VIEWS):
            _track_view(state, node, first)
        elif isinstance(first, Value) and node.op_type in CONVERSIONS and _converts_nothing(node, first):
            _track_view(state, node, first)
    graph.set_outputs([_read(state, v, None) for v in graph.outputs])
    for update in graph.state_updates:
        update.value = _read(state, update.value, None)
    _declare_updates(state, inputs_as_outputs)
    return True


def _converts_nothing(node: Node, source: Value) -> bool:
    """Whether a ``to`` node returns its operand itself: no copy asked for, same dtype, no other device."""
    operands = node.operands
    if operands.get("copy") or not node.outputs or node.outputs[0].type != source.type:
        return False
    device = operands.get("device")
    graph = node.graph
    return device is None or graph is None or str(device) == str(graph.meta.get("device", device))


def _track_view(state: _State, node: Node, source: Value) -> None:
    """Remember that ``node``'s results view ``source`` (as the graph named it, before any rewrite)."""
    known = state.aliases.get(source)
    root = known.root if known is not None else source
    chain: list[Node] | None = None
    if (node.op_type in VIEWS or node.op_type in CONVERSIONS) and (known is None or known.chain is not None):
        chain = [*(known.chain if known is not None else []), node]
    for value in node.outputs:
        state.aliases[value] = _Alias(root, chain, state.version(root))


def _resolve_operands(state: _State, node: Node) -> None:
    """Make ``node`` read what its operands hold now."""
    changed = False
    args: list[Any] = []
    for arg in node.args:
        if isinstance(arg, Value):
            new = _read(state, arg, node)
            changed = changed or new is not arg
            args.append(new)
        elif isinstance(arg, list):
            items = [_read(state, a, node) if isinstance(a, Value) else a for a in arg]
            changed = changed or any(a is not b for a, b in zip(items, arg))
            args.append(items)
        else:
            args.append(arg)
    if changed:
        state.graph.set_args(node, args)


def _read(state: _State, value: Value, before: Node | None) -> Value:
    """What reading ``value`` gives now: a root's current content, a view taken again if its root changed."""
    alias = state.aliases.get(value)
    if alias is None:
        return state.current.get(value, value)
    if state.version(alias.root) == alias.version:
        return state.fresh.get(value, value)
    if alias.chain is None:
        raise BeyondFunctionalization(
            f"{value.ref} may alias {alias.root.ref}, which was written before {value.ref} was read again: "
            "whether it sees the write depends on eager strides"
        )
    new = _take_view(state, state.current.get(alias.root, alias.root), alias.chain, before)
    state.fresh[value] = new
    alias.version = state.version(alias.root)
    return new


def _take_view(state: _State, base: Value, chain: list[Node], before: Node | None) -> Value:
    for step in chain:
        operands = dict(step.operands)
        first = next(iter(operands))
        del operands[first]
        base = state.graph.create_op(
            step.op_type,
            base,
            name=state.graph.fresh_name(f"{step.name}_view"),
            meta=dict(step.meta),
            before=before,
            output_types=[v.type for v in step.outputs],
            **operands,
        ).outputs[0]
    return base


def _rewrite_write(state: _State, node: Node, mutates: tuple[str, ...], target: Any) -> None:
    """Replace the write ``node`` by its functional op; ``target`` is what it writes, as the graph named it."""
    graph = state.graph
    operands = node.operands
    first = next(iter(operands), None)
    if mutates != (first,) or not node.op_type.startswith("aten."):
        raise BeyondFunctionalization(
            f"node {node.name} ({node.op_type}) writes to {', '.join(mutates)}: only writes to the first operand "
            "of an ATen op are rewritten"
        )
    functional = _functional_op(node.op_type)
    if not isinstance(target, Value):
        raise BeyondFunctionalization(f"node {node.name} writes to a list of tensors")
    alias = state.aliases.get(target)
    if alias is not None and alias.chain is None:
        raise BeyondFunctionalization(
            f"node {node.name} ({node.op_type}) writes through {target.ref}, which may or may not alias "
            f"{alias.root.ref}"
        )
    anchor = node._next
    name = node.name
    result = node.outputs[0] if node.outputs else None
    if result is not None:
        graph.replace_all_uses_with(result, target)  # the op's result is its first operand, written
    graph.erase(node)
    content = operands.pop(first)
    source = operands.get("src")
    if node.op_type == "aten.copy_.default" and isinstance(source, Value) and source.type == target.type:
        new = source  # a copy of a tensor of the same type: the new content is that tensor
    else:
        new = graph.create_op(
            functional, content, name=name, meta=dict(node.meta), before=anchor, output_types=[target.type], **operands
        ).outputs[0]
    if alias is None:
        state.current[target] = new
        state.versions[target] = state.version(target) + 1
        return
    root = alias.root
    assert alias.chain is not None
    content = _scatter(state, state.current.get(root, root), alias.chain, new, anchor)
    state.current[root] = content
    state.versions[root] = state.version(root) + 1
    state.fresh[target] = new
    alias.version = state.versions[root]


def _functional_op(op_type: str) -> str:
    functional = _FUNCTIONAL.get(op_type)
    if functional is None:
        namespace, name, overload = op_type.split(".")
        functional = f"{namespace}.{name[:-1]}.{overload}" if name.endswith("_") else ""
    if not functional or op_info(functional).schema is None:
        raise BeyondFunctionalization(f"{op_type} has no functional op of the same overload")
    return functional


def _scatter(state: _State, base: Value, chain: list[Node], src: Value, before: Node | None) -> Value:
    """``base`` with the view ``chain`` of it replaced by ``src``: the views' inverses, innermost first."""
    bases = [base]
    for step in chain[:-1]:
        bases.append(_take_view(state, bases[-1], [step], before))
    new = src
    for step, under in zip(reversed(chain), reversed(bases)):
        new = _inverse(state, step, under, new, before)
    return new


def _inverse(state: _State, step: Node, base: Value, src: Value, before: Node | None) -> Value:
    """``base`` with the view that ``step`` takes of it replaced by ``src``."""
    graph = state.graph
    operands = step.operands
    kind = step.op_type
    meta = dict(step.meta)
    out_type = [base.type]

    def make(op_type: str, *args: Any, **named: Any) -> Value:
        return graph.create_op(
            op_type,
            *args,
            name=graph.fresh_name(f"{step.name}_scatter"),
            meta=meta,
            before=before,
            output_types=out_type,
            **named,
        ).outputs[0]

    if kind == "aten.slice.Tensor":
        return make(
            "aten.slice_scatter.default",
            base,
            src,
            dim=operands["dim"],
            start=operands["start"],
            end=operands["end"],
            step=operands["step"],
        )
    if kind == "aten.select.int":
        return make("aten.select_scatter.default", base, src, dim=operands["dim"], index=operands["index"])
    if kind == "aten.diagonal.default":
        return make(
            "aten.diagonal_scatter.default",
            base,
            src,
            offset=operands["offset"],
            dim1=operands["dim1"],
            dim2=operands["dim2"],
        )
    if kind in ("aten.alias.default", "aten.detach.default") or kind in CONVERSIONS:
        return src
    if kind in ("aten.view.default", "aten._unsafe_view.default"):
        shape = base.type.shape if isinstance(base.type, TensorType) else None
        if shape is None or not all(isinstance(d, int) for d in shape):
            raise BeyondFunctionalization(f"a write through {step.name} ({kind}) of a tensor of symbolic shape")
        return make("aten.view.default", src, size=list(shape))
    if kind == "aten.unsqueeze.default":
        return make("aten.squeeze.dim", src, dim=operands["dim"])
    if kind in ("aten.squeeze.dim", "aten.squeeze.dims", "aten.squeeze.default"):
        shape = base.type.shape if isinstance(base.type, TensorType) else None
        if shape is None or not all(isinstance(d, int) for d in shape):
            raise BeyondFunctionalization(f"a write through {step.name} ({kind}) of a tensor of symbolic shape")
        return make("aten.view.default", src, size=list(shape))
    if kind == "aten.permute.default":
        dims = list(operands["dims"])
        rank = len(dims)
        inverse = [0] * rank
        for i, d in enumerate(dims):
            inverse[d % rank] = i
        return make("aten.permute.default", src, dims=inverse)
    if kind == "aten.transpose.int":
        return make("aten.transpose.int", src, dim0=operands["dim0"], dim1=operands["dim1"])
    if kind == "aten.t.default":
        return make("aten.t.default", src)
    raise BeyondFunctionalization(f"a write through {step.name} ({kind}), whose inverse is not known")


def _declare_updates(state: _State, inputs_as_outputs: bool) -> None:
    graph = state.graph
    inputs = set(graph.inputs)
    for root, content in state.current.items():
        if content is root:
            continue
        if isinstance(root, Weight):
            if root.kind not in ("parameter", "buffer"):
                raise BeyondFunctionalization(f"the graph writes to the constant {root.ref}")
            if not graph.is_state_target(root.name):
                graph.add_state_update(root.kind, root.name, content)
        elif root in inputs and not inputs_as_outputs:
            graph.add_state_update("input", root.name, content)


__all__ = ["CONVERSIONS", "MAYBE_VIEWS", "VIEWS", "BeyondFunctionalization", "functionalize", "has_writes"]
