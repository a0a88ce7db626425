"""Random small IR files, saved, loaded and run: the only outcomes are results or a TorchIRError."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.testing.crafted_ir import crafted_document
from torch_ir import TorchIRError, load_ir
from torch_ir.ops.runnable import runnable_aten_ops
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.worker import isolation

UNARY = ["aten.relu.default", "aten.neg.default", "aten.exp.default", "aten.tanh.default", "aten.abs.default"]
BINARY = ["aten.add.Tensor", "aten.mul.Tensor", "aten.sub.Tensor", "aten.div.Tensor", "aten.maximum.default"]
PYTHON = ["operator.add", "operator.mul", "operator.pow", "operator.lshift", "math.factorial", "builtins.round"]
REFUSED = ["aten.from_file.default", "aten.save.default", "aten._print.default", "aten.manual_seed.default"]
BIG_INTS = st.one_of(
    st.integers(-8, 64), st.integers(-(2**300), 2**300), st.sampled_from([50000000, 10**9, 1 << 40, -(10**9)])
)
DIMS = st.lists(st.integers(0, 4), min_size=0, max_size=3)


def _tensor_type(shape: list[Any], dtype: str = "float32") -> dict[str, Any]:
    return {"shape": shape, "dtype": dtype}


@st.composite
def ir_documents(draw: st.DrawFn, victim: str) -> tuple[dict[str, Any], list[list[int]]]:
    """A JSON IR document over allowed, refused and unbounded ops, and the input shapes to run it on."""
    shape = draw(DIMS)
    n_inputs = draw(st.integers(1, 3))
    inputs = [{"name": f"x{i}", "type": _tensor_type(shape)} for i in range(n_inputs)]
    tensors = [f"%x{i}" for i in range(n_inputs)]
    nodes: list[dict[str, Any]] = []
    outputs: list[str] = []
    for k in range(draw(st.integers(1, 6))):
        name = f"n{k}"
        kind = draw(st.sampled_from(["unary", "binary", "python", "refused", "factory", "lying", "broadcast"]))
        declared: dict[str, Any] | None = _tensor_type(shape)
        attrs: dict[str, Any] = {}
        if kind == "unary":
            op, args = draw(st.sampled_from(UNARY)), [draw(st.sampled_from(tensors))]
        elif kind == "binary":
            op, args = draw(st.sampled_from(BINARY)), [draw(st.sampled_from(tensors)) for _ in range(2)]
        elif kind == "python":
            op, args, declared = draw(st.sampled_from(PYTHON)), [draw(BIG_INTS), draw(BIG_INTS)], {"scalar": "int"}
            if op == "math.factorial":
                args = args[:1]
        elif kind == "refused":
            op, args = draw(st.sampled_from(REFUSED)), [draw(st.sampled_from(tensors))]
            attrs = {"filename": victim, "shared": True, "size": 4, "dtype": "uint8"}
        elif kind == "factory":
            size = draw(st.lists(st.sampled_from([0, 1, 3, 10**6, 10**9, 10**18]), min_size=1, max_size=3))
            dtype = draw(st.sampled_from(["float32", "int64", "nonexistent", "load", "__class__"]))
            op, args, attrs = "aten.zeros.default", [], {"size": size, "dtype": dtype}
            declared = _tensor_type(draw(st.sampled_from([size, [2], shape])))
        elif kind == "broadcast":  # an expand whose result is declared small, then an op that allocates it
            size = [*draw(st.lists(st.sampled_from([1, 3, 5000]), min_size=1, max_size=2)), *([-1] * len(shape))]
            nodes.append(
                {
                    "name": f"e{k}",
                    "op": "aten.expand.default",
                    "args": [draw(st.sampled_from(tensors)), size],
                    "attrs": {},
                    "outputs": [{"name": f"e{k}", "type": _tensor_type(shape)}],
                }
            )
            op, args = draw(st.sampled_from(UNARY)), [f"%e{k}"]
        else:  # a declared type that lies about the result
            op, args = draw(st.sampled_from(UNARY)), [draw(st.sampled_from(tensors))]
            declared = _tensor_type(draw(DIMS), draw(st.sampled_from(["float32", "int64", "float16"])))
        nodes.append(
            {"name": name, "op": op, "args": args, "attrs": attrs, "outputs": [{"name": name, "type": declared}]}
        )
        if declared is not None and "shape" in declared and declared["shape"] == shape and kind != "refused":
            tensors.append(f"%{name}")
        outputs.append(f"%{name}")
    outputs = draw(st.lists(st.sampled_from(outputs), min_size=1, max_size=3))
    doc = crafted_document(nodes, inputs, outputs, model="fuzzed")
    if draw(st.booleans()):  # an inline constant whose data may not fit its declared type
        data = draw(st.one_of(st.lists(st.floats(-2, 2), max_size=4), st.just("abc"), st.just([[1.0], [2.0, 3.0]])))
        declared_c = _tensor_type(draw(st.sampled_from([shape, [len(data)] if isinstance(data, list) else [1]])))
        doc["graph"]["weights"] = [
            {"name": "c", "type": declared_c, "kind": "constant", "persistent": False, "data": data}
        ]
        nodes.append(
            {
                "name": "wc",
                "op": "aten.add.Tensor",
                "args": [tensors[0], "@c"],
                "attrs": {},
                "outputs": [{"name": "wc", "type": _tensor_type(shape)}],
            }
        )
        doc["graph"]["outputs"] = [*outputs, "%wc"]
    return doc, [list(shape)] * n_inputs


@settings(max_examples=60, deadline=20000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_ir_files_run_or_raise_torch_ir_errors(tmp_path: Path, data: st.DataObject) -> None:
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"keep")
    doc, shapes = data.draw(ir_documents(str(victim)))
    path = tmp_path / "fuzzed.json"
    path.write_text(json.dumps(doc))
    try:
        saved = tmp_path / "saved.json"
        load_ir(path).save(saved)  # the IR's own writer, then its reader again
        interp = Interpreter(load_ir(saved), {}, memory_budget=64 << 20, dry_run=True)
        interp.run(*(torch.randn(s) for s in shapes))
    except TorchIRError:
        pass
    assert victim.read_bytes() == b"keep"


# ------------------------------------------------------------------ hostile documents

ALL_OPS = sorted(
    name.replace("::", ".") + ("" if "." in name.split("::")[1] else ".default")
    for name in torch._C._dispatch_get_all_op_names()
)
"""Every overload torch knows, from every namespace (aten, prims, inductor, quantized, c10d, profiler ...)."""
VIEWS = ["aten.view.default", "aten._unsafe_view.default", "aten.t.default", "aten.expand.default"]
VIEWS += ["aten.as_strided.default", "aten.alias.default", "aten.reshape.default", "aten.slice.Tensor"]
IN_PLACE = ["aten.add_.Tensor", "aten.mul_.Tensor", "aten.copy_.default", "aten.fill_.Scalar", "aten.zero_.default"]
HOSTILE_INTS = st.one_of(
    st.integers(-4, 8),
    st.sampled_from([-1, -(2**63), 2**63 - 1, 2**62, 10**8, 10**12, 1 << 31, -(10**9)]),
    st.integers(-(2**80), 2**80),
)
SIZES = st.lists(HOSTILE_INTS, min_size=0, max_size=4)
DECLARED = st.one_of(st.none(), st.builds(_tensor_type, st.lists(st.integers(0, 8), max_size=3)))
"""A declared type: none, or small (whether or not it tells the truth); absurd ones are the loader fuzzer's."""
RUNNABLE = sorted(runnable_aten_ops())


def _nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


@st.composite
def hostile_arguments(draw: st.DrawFn, tensors: list[str], attribute: bool = False) -> Any:
    """One argument: a value reference, a huge or negative integer, a list of sizes, a deeply nested list,
    a float that is not finite, or nothing; an attribute may also be any string."""
    choices = [
        st.sampled_from(tensors),
        HOSTILE_INTS,
        SIZES,
        st.builds(_nested, st.integers(1, 200), st.one_of(HOSTILE_INTS, st.sampled_from(tensors))),
        st.sampled_from([None, True, 1e308, -0.0]),
    ]
    if attribute:
        choices.append(st.sampled_from(["float32", "strided", "__class__", "/etc/passwd", "x" * 1000, "inf", "nan"]))
    return draw(st.one_of(*choices))


@st.composite
def hostile_documents(draw: st.DrawFn) -> tuple[dict[str, Any], list[int]]:
    """An IR document an adversary would write: random overloads from the whole torch.ops namespace with
    random arguments, chains of views of a weight ended by an in-place write, huge and negative sizes, deeply
    nested arguments and declared types that lie. Returns it and the shape of its input."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))
    inputs = [{"name": "x", "type": _tensor_type(shape)}]
    tensors = ["%x", "@w"]
    nodes: list[dict[str, Any]] = []
    for k in range(draw(st.integers(1, 5))):
        name = f"h{k}"
        kind = draw(st.sampled_from(["any", "any", "alias_chain", "sized"]))
        if kind == "alias_chain":  # views of the weight, then a write through the last one
            source = "@w"
            for j in range(draw(st.integers(1, 6))):
                view = f"{name}v{j}"
                attrs = {"size": draw(SIZES), "stride": draw(SIZES), "storage_offset": draw(HOSTILE_INTS)}
                nodes.append(
                    {
                        "name": view,
                        "op": draw(st.sampled_from(VIEWS)),
                        "args": [source],
                        "attrs": draw(st.sampled_from([attrs, {}, {"dim": 0, "start": 0, "end": 2**62}])),
                        "outputs": [{"name": view, "type": draw(DECLARED)}],
                    }
                )
                source = f"%{view}"
            op, args, attrs = draw(st.sampled_from(IN_PLACE)), [source, "%x"], {}
        elif kind == "sized":
            op = draw(st.sampled_from(["aten.zeros.default", "aten.ones.default", "aten.empty.memory_format"]))
            args, attrs = [draw(SIZES)], {"dtype": draw(st.sampled_from(["float32", "int64", None]))}
        else:
            op = draw(st.one_of(st.sampled_from(ALL_OPS), st.sampled_from(RUNNABLE)))
            args = draw(st.lists(hostile_arguments(tensors), max_size=4))
            attrs = draw(
                st.dictionaries(
                    st.sampled_from(["size", "dim", "minlength", "width", "n", "offset"]),
                    hostile_arguments(tensors, attribute=True),
                    max_size=3,
                )
            )
        declared = draw(DECLARED)
        nodes.append(
            {"name": name, "op": op, "args": args, "attrs": attrs, "outputs": [{"name": name, "type": declared}]}
        )
        tensors.append(f"%{name}")
    doc = crafted_document(nodes, inputs, [tensors[-1]], model="hostile")
    doc["graph"]["weights"] = [{"name": "w", "type": _tensor_type([2, 2]), "kind": "parameter"}]
    return doc, shape


HOSTILE_EXAMPLES = 400 if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 40


@settings(max_examples=HOSTILE_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_documents_are_refused_or_run_bounded(tmp_path: Path, data: st.DataObject) -> None:
    doc, shape = data.draw(hostile_documents())
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(doc))
    weight = torch.ones(2, 2)
    start = time.perf_counter()
    try:
        with isolation(memory_budget=64 << 20):
            interp = Interpreter(load_ir(path), {"w": weight}, memory_budget=64 << 20)
            interp.run(torch.randn(shape))
    except TorchIRError:
        pass
    assert time.perf_counter() - start < 30
    assert weight.tolist() == [[1.0, 1.0], [1.0, 1.0]]  # no chain of views reaches the caller's weight
