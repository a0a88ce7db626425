"""The Mermaid backend: shapes and styles, escaping, depth, max_nodes, folding of repeated blocks."""

from __future__ import annotations

import re

import pytest
import torch

from tests.models import get_model
from tests.testing.mermaid import MermaidSyntaxError, find_mermaid_js, parse_with_mermaid_js, validate_mermaid
from torch_ir import Graph, TensorType, extract_ir
from torch_ir.backends.mermaid import escape_label, render_mermaid

_RENDERED: dict[str, str] = {}
"""Every diagram the tests checked; the last test parses them all at once with the real parser (slow to start)."""


def _check(text: str) -> None:
    validate_mermaid(text)
    _RENDERED[f"diagram {len(_RENDERED)}"] = text


def _extract(name: str):
    case = get_model(name)
    args, kwargs = case.inputs("meta")
    return extract_ir(
        case.build_meta(), args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes, pipeline="none", name=name
    )


@pytest.fixture(scope="module")
def llama32():
    from tests.testing.transformers_models import llama

    with torch.device("meta"):
        model = llama(32).eval()
    ids = torch.zeros(1, 8, dtype=torch.long, device="meta")
    return extract_ir(model, (ids,), example_kwargs={"use_cache": False}, pipeline="none")


def test_shapes_styles_and_edge_types() -> None:
    text = render_mermaid(_extract("sdpa_attention"))
    _check(text)
    assert text.startswith("flowchart TD\n")
    assert re.search(r'^\s+i0\(\["x<br/>f32\[2,6,32\]"\]\)$', text, re.M)  # input: stadium
    assert re.search(r'^\s+o0\[/"output 0<br/>f32\[2,6,32\]"/\]$', text, re.M)  # output: parallelogram
    assert re.search(r'^\s+w\d+\[\("qkv.weight<br/>f32\[96,32\]"\)\]$', text, re.M)  # weight: cylinder
    assert re.search(r'^\s+n\d+\["scaled_dot_product_attention<br/>f32\[2,4,6,8\]"\]$', text, re.M)
    assert '-->|"f32[2,6,96]"|' in text
    for kind in ("op", "input", "output", "weight"):
        assert f"classDef {kind} " in text and re.search(rf"^\s+class [\w,]+ {kind}$", text, re.M)
    assert "subgraph s" in text and '["qkv: Linear"]' in text


@pytest.mark.parametrize(
    "name",
    ["two_tower", "tied_embedding_lm", "small_cnn", "kwargs_dict", "dynamic_batch", "cond_router", "cond_in_scan"],
)
def test_test_models_give_valid_mermaid(name: str) -> None:
    _check(render_mermaid(_extract(name)))


def test_escaping_of_labels() -> None:
    graph = Graph()
    graph.meta["model"] = 'evil "model" <b>#1</b>'
    x = graph.add_input("x", TensorType((2,), "float32"))
    weird_stack = [['blk["0"]<a>', "pkg.Cls#1[x]{y}|z"], ['blk["0"]<a>.in`er', "pkg.Inner"]]
    node = graph.create_node(
        'my"lib.op<x>#[1]{2}|a;b.default',
        [x],
        {},
        [TensorType((2,), "float32")],
        name="odd",
        meta={"module_stack": weird_stack},
    )
    graph.set_outputs(node.outputs)
    text = render_mermaid(graph)
    _check(text)
    assert "#quot;" in text and "#lt;" in text and "#gt;" in text and "#35;" in text
    assert escape_label('a"b<c>#d&e`') == "a#quot;b#lt;c#gt;#35;d#amp;e#96;"


def test_validator_rejects_broken_text() -> None:
    good = 'flowchart TD\n    a["x"]\n    b["y"]\n    a -->|"t"| b\n'
    validate_mermaid(good)
    for bad in [
        'flowchart TD\n    a["x " y"]\n',
        'flowchart TD\n    subgraph s1["x"]\n    a["x"]\n',
        'flowchart TD\n    a["x"]\n    a --> b\n',
        'flowchart TD\n    a["x <b>"]\n',
        "flowchart TD\n    end\n",
        "graph XY\n",
        'flowchart TD\n    a["x"]\n    class a nostyle\n',
        'flowchart TD\n    end["x"]\n',
        'flowchart TD\n    a["x"]; b["y"]\n',
    ]:
        with pytest.raises(MermaidSyntaxError):
            validate_mermaid(bad)


def test_folds_32_identical_layers(llama32) -> None:
    text = render_mermaid(llama32)
    _check(text)
    assert "x32" in text and "LlamaDecoderLayer" in text
    assert len(text.splitlines()) < 250
    assert text.count("{{") == 1  # one fold box for the decoder layers
    unfolded = render_mermaid(llama32, fold_repeats=False, depth=1, max_nodes=10_000)
    assert "x32" not in unfolded and unfolded.count("LlamaDecoderLayer") == 32
    _check(unfolded)


def test_depth_collapses_modules(llama32) -> None:
    top = render_mermaid(llama32, depth=0)
    _check(top)
    assert re.search(r'\[\["model: LlamaModel<br/>\d+ ops"\]\]', top)
    assert "subgraph" not in top
    two = render_mermaid(llama32, depth=2, fold_repeats=False, max_nodes=10_000)
    _check(two)
    assert re.search(r'subgraph s\d+\["model: LlamaModel"\]', two) and '["model.layers.31: LlamaDecoderLayer"]' in two
    assert re.search(r'\[\["model.layers.0.self_attn: LlamaAttention<br/>\d+ ops"\]\]', two)
    assert "q_proj" not in two


def test_max_nodes_collapses_then_cuts(llama32) -> None:
    small = render_mermaid(llama32, fold_repeats=False, max_nodes=40)
    _check(small)
    assert "%% max_nodes=40: modules deeper than 0 level(s) are collapsed to fit" in small
    graph = _extract("manual_attention").graph
    cut = render_mermaid(graph, max_nodes=8)
    _check(cut)
    assert "more ops not shown" in cut and "%% " in cut
    nodes = re.findall(r"^\s+(\w+)(?:\[|\(|\{|>)", cut, re.M)
    assert len([n for n in nodes if n != "subgraph"]) <= 8


def test_init_graph_is_drawn_and_linked_to_the_derived_weights() -> None:
    from torch import nn

    class Transposing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.w.t()

    with torch.device("meta"):
        model = Transposing()
    ir = extract_ir(model, (torch.randn(2, 4, device="meta"),))
    assert ir.init is not None
    text = render_mermaid(ir)
    validate_mermaid(text)
    assert 'subgraph init0["init graph: runs once when weights are bound"]' in text
    assert 'iw0[("w<br/>f32[8,4]")]' in text and 'in0["t<br/>f32[4,8]"]' in text
    derived = re.search(r'(w\d+)\[\("w\.t<br/>f32\[4,8\]"\)\]', text).group(1)
    assert f'in0 -->|"f32[4,8]"| {derived}' in text  # the init result feeds the derived weight


def _edges(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s+(\w+) -->(?:\|\"[^\"]*\"\|)? (\w+)$", text, re.M)


def _acyclic(text: str) -> bool:
    import networkx as nx

    return nx.is_directed_acyclic_graph(nx.DiGraph(_edges(text)))


@pytest.fixture(scope="module")
def llama8_cse():
    """An 8-layer tiny Llama through the default pipeline: CSE shares the rotary unsqueezes between layers."""
    from tests.testing.transformers_models import llama

    with torch.device("meta"):
        model = llama(8).eval()
    ids = torch.zeros(1, 8, dtype=torch.long, device="meta")
    return extract_ir(model, (ids,), example_kwargs={"use_cache": False})


def test_all_layers_fold_after_cse_and_siblings_never_fold(llama8_cse) -> None:
    text = render_mermaid(llama8_cse)
    _check(text)
    folds = re.findall(r'\{\{"([^"]*)"\}\}', text)
    assert folds == ["model.layers.0 … 7  x8<br/>LlamaDecoderLayer, 52 ops each"]
    assert _acyclic(text)
    deep = render_mermaid(llama8_cse, fold_repeats=True, max_nodes=10_000, expand_folded=True)
    _check(deep)
    assert "q_proj: Linear" in deep and "k_proj: Linear" in deep and "v_proj: Linear" in deep
    assert "x2" not in deep and "x3" not in deep and "x4" not in deep  # q/k/v/o and gate/up are siblings


def test_expand_folded_draws_the_first_layer_for_all(llama8_cse) -> None:
    text = render_mermaid(llama8_cse, expand_folded=True)
    _check(text)
    assert re.search(r'subgraph s\d+\["model.layers.0 … 7  x8: LlamaDecoderLayer \(the first stands for all\)"\]', text)
    assert "model.layers.0.self_attn.q_proj.weight" in text and "model.layers.1." not in text
    assert _acyclic(text)  # no edge from one repetition back into the representative
    norm = re.search(r'subgraph (s\d+)\["model.norm: LlamaRMSNorm"\]', text)
    assert norm is not None


def test_parallel_identical_siblings_do_not_fold_sequential_ones_do() -> None:
    from torch import nn

    class Parallel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = nn.ModuleList(nn.Linear(8, 8) for _ in range(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([h(x) for h in self.heads]).sum(0)

    class Chain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.ReLU()) for _ in range(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for block in self.blocks:
                x = block(x)
            return x

    with torch.device("meta"):
        parallel, chain = Parallel(), Chain()
    x = torch.randn(2, 8, device="meta")
    side_by_side = render_mermaid(extract_ir(parallel, (x,)))
    _check(side_by_side)
    assert "{{" not in side_by_side and side_by_side.count("heads.") >= 4
    folded = render_mermaid(extract_ir(chain, (x,)))
    _check(folded)
    assert re.findall(r'\{\{"([^"]*)"\}\}', folded) == ["blocks.0 … 3  x4<br/>Sequential, 2 ops each"]
    assert _acyclic(folded)


@pytest.mark.skipif(find_mermaid_js() is None, reason="mermaid npm package not installed (tests/testing/mermaid.py)")
def test_real_mermaid_parser_accepts_every_diagram() -> None:
    """Last in this file: it parses every diagram the tests above checked."""
    texts = {**_RENDERED, "bad": 'flowchart TD\n    a["x " y"] --> b\n'}
    results = parse_with_mermaid_js(texts)
    assert results.pop("bad")
    assert {name: error for name, error in results.items() if error} == {}
