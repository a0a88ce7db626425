"""Property-based tests of the IR loaders: mutated JSON files and text either load or raise a TorchIRError.

Bounded so ``make test`` stays quick; ``make fuzz`` runs the same properties with many more examples
(the ``fuzz`` hypothesis profile).
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.models import get_model
from torch_ir import TorchIRError, extract_ir
from torch_ir.ir import Graph, TensorType, parse_graph, print_graph
from torch_ir.serde import dumps, loads

settings.register_profile("fuzz", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
settings.register_profile("quick", max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


@cache
def _valid_documents() -> tuple[str, ...]:
    texts = []
    for name in ("two_tower", "dynamic_batch", "kwargs_dict", "manual_attention", "cond_in_scan", "while_double"):
        case = get_model(name)
        args, kwargs = case.inputs("meta")
        ir = extract_ir(
            case.build_meta(), args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes, pipeline="none"
        )
        texts.append(dumps(ir))
    return tuple(texts)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out.extend(_paths(value, (*prefix, index)))
    return out


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["%x", "@fc.weight", "%linear", "float32", "-inf"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


def _mutate(doc: Any, data: st.DataObject) -> Any:
    paths = _paths(doc)[1:]
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    action = data.draw(st.sampled_from(["delete", "replace", "deep", "duplicate", "swap"]))
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = data.draw(json_values)
    elif action == "deep":
        value: Any = 1
        for _ in range(data.draw(st.integers(min_value=50, max_value=800))):
            value = [value]
        parent[last] = value
    elif action == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    elif action == "swap" and isinstance(parent, list) and len(parent) > 1:
        other = data.draw(st.integers(min_value=0, max_value=len(parent) - 1))
        parent[last], parent[other] = parent[other], parent[last]
    return doc


@given(st.data())
def test_mutated_json_loads_or_raises_a_torch_ir_error(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(_valid_documents()))
    doc = json.loads(text)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        doc = _mutate(doc, data)
    try:
        ir = loads(json.dumps(doc))
    except TorchIRError:
        return
    assert loads(dumps(ir)) == ir  # whatever loads, saves and loads back equal


@given(st.data())
def test_truncated_or_corrupted_bytes_raise_a_torch_ir_error(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(_valid_documents()))
    cut = data.draw(st.integers(min_value=0, max_value=len(text) - 2))
    noise = data.draw(st.text(max_size=5))
    try:
        loads(text[:cut] + noise)
    except TorchIRError:
        return


@given(st.text(max_size=300))
def test_random_text_parses_or_raises_a_torch_ir_error(text: str) -> None:
    try:
        parse_graph(text)
    except TorchIRError:
        pass


@given(st.data())
def test_mutated_graph_text_parses_or_raises_a_torch_ir_error(data: st.DataObject) -> None:
    text = parse_graph_text()
    start = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    end = data.draw(st.integers(min_value=start, max_value=min(len(text), start + 20)))
    replacement = data.draw(st.sampled_from(["", "%", "@", "{", "}", "[", "]", "(", ")", ",", "=", "f32[", "?", "\n"]))
    try:
        graph = parse_graph(text[:start] + replacement + text[end:])
    except TorchIRError:
        return
    assert print_graph(parse_graph(print_graph(graph))) == print_graph(graph)


@cache
def parse_graph_text() -> str:
    return str(loads(_valid_documents()[0]).graph)


# ------------------------------------------------------------- random graphs

UNARY = ["aten.relu.default", "aten.neg.default", "aten.tanh.default", "aten.exp.default"]
BINARY = ["aten.add.Tensor", "aten.mul.Tensor", "aten.sub.Tensor"]


@st.composite
def random_graphs(draw: st.DrawFn) -> Graph:
    graph = Graph()
    shape = tuple(
        draw(st.lists(st.integers(min_value=1, max_value=5) | st.sampled_from(["s0", "2*s0"]), min_size=1, max_size=3))
    )
    type_ = TensorType(shape, draw(st.sampled_from(["float32", "float16", "bfloat16", "int64"])))
    values = [graph.add_input(f"in{i}", type_) for i in range(draw(st.integers(min_value=1, max_value=3)))]
    for i in range(draw(st.integers(min_value=0, max_value=3))):
        values.append(graph.add_weight(f"layer{i}.weight", type_, draw(st.sampled_from(["parameter", "buffer"]))))
    for _ in range(draw(st.integers(min_value=1, max_value=25))):
        if draw(st.booleans()):
            args = [draw(st.sampled_from(values))]
            op = draw(st.sampled_from(UNARY))
            attrs = {}
        else:
            args = [draw(st.sampled_from(values)), draw(st.sampled_from(values))]
            op = draw(st.sampled_from(BINARY))
            attrs = {"alpha": draw(st.integers(min_value=-3, max_value=3) | st.floats(allow_nan=False))}
        node = graph.create_node(op, args, attrs, [type_])
        values.append(node.outputs[0])
    graph.set_outputs(draw(st.lists(st.sampled_from(values), min_size=1, max_size=3)))
    return graph


@given(random_graphs())
def test_random_graphs_round_trip_through_text_and_json(graph: Graph) -> None:
    from torch_ir.ir import IR

    graph.verify()
    text = print_graph(graph)
    assert parse_graph(text) == graph
    ir = IR(graph)
    assert loads(dumps(ir)) == ir


def test_absurdly_deep_nesting_is_a_serialization_error() -> None:
    import pytest

    from torch_ir import SerializationError

    with pytest.raises(SerializationError, match="nested too deeply"):
        loads("[" * 100_000 + "]" * 100_000)
    doc = json.loads(_valid_documents()[0])
    doc["module"]["functions"][0]["graph"]["nodes"][0].setdefault("attrs", {})["deep"] = "DEEP"
    text = json.dumps(doc).replace('"DEEP"', "[" * 5000 + "]" * 5000)
    with pytest.raises(SerializationError, match="nested too deeply"):
        loads(text)
