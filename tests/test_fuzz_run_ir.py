"""Random small IR files, saved, loaded and run: the only outcomes are results or a TorchIRError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.testing.crafted_ir import crafted_document
from torch_ir import TorchIRError, load_ir
from torch_ir.runtime.interpreter import Interpreter

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
