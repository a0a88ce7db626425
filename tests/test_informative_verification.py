"""The pieces of a verification that can catch a wrong IR: informative inputs and weights, trials,
tolerances scaled by magnitude, coverage of regions, isolation, and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from torch_ir import InputError, ModelSpecError, extract_ir
from torch_ir.analysis.input_ranges import input_index_bounds
from torch_ir.cli import main
from torch_ir.frontends.inputs import InputSpec, parse_input_spec, random_input
from torch_ir.runtime.informative_weights import constant_weights, informative_weights, redrawn_weights
from torch_ir.runtime.trial_inputs import embedding_rows
from torch_ir.runtime.verifier import compare_tensors, verify_ir

# ------------------------------------------------------------------ input specs and random inputs


def test_input_specs_take_a_range_and_name_colon() -> None:
    assert parse_input_spec("ids:1x32:int64:0..50257") == InputSpec((1, 32), "int64", "ids", 0, 50257)
    assert parse_input_spec("ids=1x32:i64:3..9") == InputSpec((1, 32), "int64", "ids", 3, 9)
    assert parse_input_spec("x:2x3:f32:-1.5..2") == InputSpec((2, 3), "float32", "x", -1.5, 2.0)
    assert parse_input_spec("scalar:f32") == InputSpec((), "float32")
    assert str(parse_input_spec("ids:1x4:int64:0..10")) == "ids=1x4:int64:0..10"


@pytest.mark.parametrize(
    ("text", "message"),
    [("m:2x3:bool:0..2", "takes no range"), ("1x4:int64:5..5", "empty"), ("1x4:int64:0..2.5", "integer bounds")],
)
def test_bad_ranges_are_model_spec_errors(text: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        parse_input_spec(text)


def test_random_inputs_are_seeded_and_inside_their_range() -> None:
    def draw(seed: int) -> torch.Tensor:
        return random_input((4, 64), "int64", torch.Generator().manual_seed(seed), value_range=(10, 20))

    ids = draw(0)
    assert torch.equal(ids, draw(0)) and not torch.equal(ids, draw(1))
    assert int(ids.min()) >= 10 and int(ids.max()) <= 19 and len(ids.unique()) > 5
    floats = random_input((1000,), "bfloat16", torch.Generator().manual_seed(0))
    assert floats.dtype == torch.bfloat16 and 0.8 < float(floats.float().std()) < 1.2 and float(floats.min()) < 0


@pytest.mark.parametrize(("name", "dtype"), [("mask", "bool"), ("attention_mask", "int64"), (None, "bool")])
def test_masks_are_random_and_keep_every_row_valid(name: str | None, dtype: str) -> None:
    mask = random_input((64, 16), dtype, torch.Generator().manual_seed(0), name=name)
    assert str(mask.dtype) == f"torch.{dtype}"
    assert bool((mask[:, 0] == 1).all())  # every row keeps its first element: no row is all masked
    assert 0.3 < float(mask[:, 1:].float().mean()) < 0.7  # and the rest is a random pattern


# --------------------------------------------------------------------- ranges read off the IR


class Indexer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Embedding(50, 4)
        self.rows = torch.nn.Parameter(torch.randn(7, 4))

    def forward(self, ids: torch.Tensor, pick: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        embedded = self.table(ids.reshape(-1).to(torch.int64))
        return embedded.sum() + self.rows.index_select(0, pick).sum() + (other * 2).sum()


def test_index_bounds_follow_value_preserving_ops_to_the_indexing_op() -> None:
    args = (torch.zeros(2, 3, dtype=torch.int32), torch.zeros(5, dtype=torch.int64), torch.zeros(4, dtype=torch.int64))
    ir = extract_ir(Indexer(), args)
    bounds = input_index_bounds(ir.graph)
    assert (
        bounds["ids"].high == 50 and not bounds["ids"].negative and bounds["ids"].op_type.startswith("aten.embedding")
    )
    assert bounds["pick"].high == 7 and bounds["pick"].low == -7
    assert "other" not in bounds  # arithmetic, not an index


CALLED_LOOKUP = """\
module {
  weight @emb.w : f32[10,4] parameter
  func forward graph(%ids: i64[1,3]) {
    %c = func.call(%ids, @emb.w) {callee="lookup"} : (i64[1,3], f32[10,4]) -> f32[1,3,4]
    return %c
  }
  func private lookup graph(%i: i64[1,3], %w: f32[10,4]) {
    %flat = aten.reshape.default(%i, [3]) : (i64[1,3]) -> i64[3]
    %e = aten.embedding.default(%w, %flat) : (f32[10,4], i64[3]) -> f32[3,4]
    %r = aten.reshape.default(%e, [1, 3, 4]) : (f32[3,4]) -> f32[1,3,4]
    return %r
  }
}"""


def test_index_bounds_follow_an_input_into_the_function_a_call_passes_it_to() -> None:
    from torch_ir.ir import parse_module

    ir = parse_module(CALLED_LOOKUP)
    ir.verify()
    assert input_index_bounds(ir.graph) == {}  # the entry alone indexes nothing
    functions = {name: f.graph for name, f in ir.functions.items()}
    bound = input_index_bounds(ir.graph, functions)["ids"]
    assert (bound.high, bound.negative, bound.op_type) == (10, False, "aten.embedding.default")


def test_the_models_own_embedding_bounds_an_input_the_ir_could_hide() -> None:
    model = Indexer()
    args = (torch.zeros(2, 3, dtype=torch.int64), torch.zeros(5, dtype=torch.int64), torch.zeros(4, dtype=torch.int64))
    assert embedding_rows(model, args, {}, {"ids": args[0], "pick": args[1]}) == {"ids": 50}  # through a reshape


# --------------------------------------------------------------------------- informative weights


class Normed(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.ln = torch.nn.LayerNorm(4)
        self.head = torch.nn.Linear(4, 4)
        self.tied = self.head.weight
        self.register_buffer("table", torch.ones(4), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.ln(self.bn(self.conv(x)).mean((2, 3)))) * self.table


def test_informative_weights_leave_no_norm_an_identity() -> None:
    torch.manual_seed(0)
    model = Normed().eval()
    conv = model.conv.weight.detach().clone()
    names = informative_weights(model, seed=0)
    assert set(names) >= {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "ln.weight", "ln.bias"}
    assert bool((model.bn.running_var > 0).all()) and not torch.allclose(model.bn.running_var, torch.ones(4))
    assert not torch.allclose(model.bn.running_mean, torch.zeros(4)) and len(model.ln.weight.unique()) == 4
    assert torch.equal(model.conv.weight, conv)  # randomly initialized: kept
    assert torch.equal(model.table, torch.ones(4))  # a non-persistent buffer: a constant, kept
    assert constant_weights(model) == {}
    again = Normed().eval()
    again.load_state_dict(dict(model.state_dict()))
    other = Normed().eval()
    informative_weights(other, seed=1)
    assert not torch.equal(other.bn.running_var, model.bn.running_var)  # the seed decides


def test_tied_weights_are_redrawn_once() -> None:
    model = torch.nn.Module()
    shared = torch.nn.Parameter(torch.zeros(3, 3))
    model.a = torch.nn.Linear(3, 3)
    model.b = torch.nn.Linear(3, 3)
    model.a.weight = model.b.weight = shared
    new = redrawn_weights(model, torch.Generator().manual_seed(0))
    assert new["a.weight"] is new["b.weight"]
    assert torch.equal(shared, torch.zeros(3, 3))  # redrawn_weights does not change the model


# ------------------------------------------------------------------------ tolerances by magnitude


def test_tolerance_follows_the_magnitude_of_the_reference() -> None:
    small = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 1e-4
    assert not compare_tensors(small * 1.05, small).passed  # 5% off on small outputs: no longer hidden by atol
    logits = torch.randn(4, 1000, generator=torch.Generator().manual_seed(0)) * 10
    rounded = logits.bfloat16()
    ulp = (rounded.float().abs() * 2**-8).clamp(min=2**-8)
    off = (rounded.float() + ulp).bfloat16()  # one bfloat16 step everywhere, zeros included
    assert compare_tensors(off, rounded).passed
    assert not compare_tensors((rounded.float() * 1.2).bfloat16(), rounded).passed
    cmp = compare_tensors(small * 1.05, small, atol=1e-3)
    assert cmp.passed and cmp.atol == 1e-3  # an atol given is absolute


# ------------------------------------------------------------------------------- trials


class Mlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)
        self.ln = torch.nn.LayerNorm(6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.fc(x))


def test_trials_run_their_own_seeds_and_redraw_constant_weights() -> None:
    torch.manual_seed(0)
    model = Mlp().eval()
    x = torch.randn(2, 6)
    ir = extract_ir(model, (x,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ok, report = verify_ir(ir, model, (x,), trials=4, seed=5)
    assert ok, str(report)
    assert [(t.index, t.seed) for t in report.trials] == [(0, 5), (1, 6), (2, 7), (3, 8)]
    assert report.trials[0].weights == "given" and "2 constant tensor(s) redrawn" in report.trials[1].weights
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    data = report.to_dict()
    assert [t["seed"] for t in data["trials"]] == [5, 6, 7, 8] and data["coverage"] == {} and data["warnings"] == []
    ok, report = verify_ir(ir, model, (x,), trials=1)
    assert ok and len(report.trials) == 1


def test_a_model_whose_outputs_no_input_changes_fails() -> None:
    class Ignores(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = torch.nn.Parameter(torch.randn(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias * 2 + x.sum() * 0

    model = Ignores().eval()
    x = torch.randn(2)
    ir = extract_ir(model, (x,))
    ok, report = verify_ir(ir, model, (x,))
    assert not ok and "the test inputs do not reach them" in report.error
    assert verify_ir(ir, model, (x,), trials=1)[0]


def test_symbolic_dimensions_take_new_sizes_in_the_trials() -> None:
    torch.manual_seed(0)
    model = Mlp().eval()
    x = torch.randn(5, 6)
    ir = extract_ir(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=2, max=16)},))
    ok, report = verify_ir(ir, model, (x,))
    assert ok, str(report)
    shapes = [t.inputs for t in report.trials]
    assert shapes[0] == "x float32[5, 6]" and len(set(shapes)) == 3


def test_input_ranges_name_inputs_of_the_ir() -> None:
    torch.manual_seed(0)
    model = Mlp().eval()
    x = torch.randn(2, 6)
    with pytest.raises(InputError, match="names no input of the IR: y"):
        verify_ir(extract_ir(model, (x,)), model, (x,), input_ranges={"y": (0, 1)})


def test_ids_are_drawn_over_the_embedding_and_out_of_range_ids_are_refused() -> None:
    model = Indexer().eval()
    args = (torch.zeros(2, 3, dtype=torch.int32), torch.zeros(5, dtype=torch.int64), torch.zeros(4, dtype=torch.int64))
    ir = extract_ir(model, args)
    ok, report = verify_ir(ir, model, args, trials=4)
    assert ok, str(report)
    assert any(int(t.inputs.split(" in ")[1].split("..")[1].split(",")[0]) > 10 for t in report.trials[1:])
    bad = (torch.full((2, 3), 50, dtype=torch.int32), args[1], args[2])
    with pytest.raises(InputError, match=r"input ids holds values 50\.\.50, outside 0\.\.49"):
        verify_ir(ir, model, bad)


# ------------------------------------------------------------------------------ coverage


def test_a_loop_body_no_trial_enters_is_named() -> None:
    from torch._higher_order_ops.while_loop import while_loop

    class Never(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            def cond_fn(v: torch.Tensor) -> torch.Tensor:
                return v.abs().sum() < -1.0

            def body_fn(v: torch.Tensor) -> tuple[torch.Tensor]:
                return (v * 2.0,)

            (out,) = while_loop(cond_fn, body_fn, (x,))
            return out + x

    model = Never().eval()
    x = torch.randn(4)
    ir = extract_ir(model, (x,))
    ok, report = verify_ir(ir, model, (x,))
    assert ok, str(report)
    loop = next(n.name for n in ir.nodes if n.op_type == "higher_order.while_loop")
    assert report.coverage == {f"{loop}/cond": 3, f"{loop}/body": 0}
    assert report.warnings == [f"the body of {loop} never ran: give inputs that reach it"]
    assert f"regions run (trials): {loop}/cond 3/3, {loop}/body 0/3" in str(report)


def test_the_regions_of_a_called_function_are_counted_once_whatever_the_call_site() -> None:
    from torch._higher_order_ops.while_loop import while_loop

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            def cond_fn(v: torch.Tensor) -> torch.Tensor:
                return v.abs().sum() < -1.0

            def body_fn(v: torch.Tensor) -> tuple[torch.Tensor]:
                return (v * 2.0,)

            (out,) = while_loop(cond_fn, body_fn, (self.fc(x),))
            return out + x

    class Stack(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList([Block(), Block()])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for layer in self.layers:
                x = layer(x)
            return x

    model = Stack().eval()
    x = torch.randn(2, 4)
    ir = extract_ir(model, (x,), pipeline="annotate-shapes,canonicalize,outline-repeated-blocks")
    assert [n for n, f in ir.functions.items() if not f.public] == ["block"]
    assert not any(n.regions for n in ir.graph.nodes)  # the loops are in the body, called twice
    ok, report = verify_ir(ir, model, (x,))
    assert ok, str(report)
    loop = next(n.name for n in ir.functions["block"].graph.nodes if n.regions)
    assert report.coverage == {f"@block/{loop}/cond": 3, f"@block/{loop}/body": 0}
    assert report.warnings == [f"the body of @block/{loop} never ran: give inputs that reach it"]


# ------------------------------------------------------------------------------- command line


def test_cli_trials_seed_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "gpt.json"
    assert main(["extract", "zoo:gpt", "-o", str(path), "-q"]) == 0
    code = main(["verify", str(path), "--model", "zoo:gpt", "--trials", "2", "--seed", "3", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and [t["seed"] for t in report["trials"]] == [3, 4]
    assert all(" in " in t["inputs"] for t in report["trials"])  # ids drawn, not zeros
    assert main(["verify", str(path), "--model", "zoo:gpt", "--trials", "0"]) == 2
    assert "--trials: '0': expected an integer of at least 1" in capsys.readouterr().err


def test_hf_specs_give_the_vocabulary_of_their_ids() -> None:
    pytest.importorskip("transformers")
    from tests.transformers_models import TINY
    from torch_ir.frontends.model_specs import resolve_model

    bundle = resolve_model("hf:gpt2", device="meta", config_overrides=TINY["gpt2"])
    assert bundle.input_ranges["input_ids"] == (0, 128) and bundle.input_ranges["position_ids"] == (0, 64)
    bundle = resolve_model("hf:bert", device="meta", config_overrides={"vocab_size": 99, "type_vocab_size": 3})
    assert bundle.input_ranges["token_type_ids"] == (0, 3) and bundle.input_ranges["input_ids"] == (0, 99)


# ------------------------------------------------------------------------------ programs


def test_a_program_runs_on_copies_of_the_weights() -> None:
    pytest.importorskip("transformers")
    from tests.transformers_models import build_causal_lm
    from torch_ir import extract_llm
    from torch_ir.runtime.program import ProgramRunner

    ir = extract_llm(build_causal_lm("llama", "meta"), max_cache_len=16, pipeline="none")
    real = build_causal_lm("llama", "cpu")
    runner = ProgramRunner(ir, real, strict=False)
    bound = runner.entries["prefill"].weights["model.norm.weight"]
    storage = bound.untyped_storage().data_ptr()
    assert storage != real.model.norm.weight.untyped_storage().data_ptr()
    assert torch.equal(bound, real.model.norm.weight)
    assert runner.entries["decode"].weights["model.norm.weight"].untyped_storage().data_ptr() == storage  # one copy
    bound.zero_()
    assert runner.weights_copy.written() == ["model.norm.weight"]
    assert float(real.model.norm.weight.abs().sum()) > 0
    runner.rebind()
    assert runner.weights_copy.written() == []


def test_a_tie_in_eagers_logits_is_not_a_token_mismatch() -> None:
    from torch_ir.runtime.generation import _step_check

    expected = torch.zeros(1, 1, 8, dtype=torch.bfloat16)
    expected[0, 0, 3] = 2.0
    expected[0, 0, 5] = 2.0 - 2**-6  # eager's top two are within bfloat16's tolerance of each other
    got = expected.clone()
    got[0, 0, 5] = 2.0 + 2**-6
    check = _step_check(1, "decode", got, expected, None, None)
    assert check.token_ir == 5 and check.token_eager == 3 and check.tie and check.passed
    far = expected.clone()
    far[0, 0, 5] = 1.0
    got = far.clone()
    got[0, 0, 5] = 3.0
    assert not _step_check(1, "decode", got, far, None, None).passed
