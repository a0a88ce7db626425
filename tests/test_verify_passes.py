"""Every built-in pass keeps the numbers: the IR before and after it gives the same outputs."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.models import MODELS, get_model
from torch_ir import extract_ir
from torch_ir.passes.manager import PassManager
from torch_ir.passes.registry import BUILTIN_MODULES, get_pass
from torch_ir.runtime.interpreter import Interpreter

PASS_NAMES = [m.replace("_", "-") for m in BUILTIN_MODULES]
"""The built-in passes, by registry name (module ``hoist_weights`` registers ``hoist-weights``)."""

CASE_NAMES = [
    "tied_embedding_lm",
    "residual_mlp",
    "manual_attention",
    "buffers",
    "kwargs_dict",
    "dynamic_batch",
    "made_in_forward",
    "permute_view",
    "buffer_counter",
    "lazy_rescale",
    "clone_inplace",
    "data_dependent_check",
]
CASE_NAMES += ["cond_router", "while_double", "scan_rnn", "map_rows", "cond_in_scan", "diagonal_ssm"]  # regions


def test_every_built_in_pass_is_registered() -> None:
    for name in PASS_NAMES:
        assert get_pass(name).name == name


def _outputs(ir, real, args, kwargs):
    """Two calls' outputs and the state after them: a pass that treated changing state as constant fails."""
    interp = Interpreter(ir, real, strict=False)
    first = torch.utils._pytree.tree_leaves(interp(*args, **kwargs))
    second = torch.utils._pytree.tree_leaves(interp(*args, **kwargs))
    state = [interp.weights[u.target] for u in ir.graph.state_updates if u.kind != "input"]
    return first + second + state


@pytest.mark.parametrize("pass_name", PASS_NAMES)
@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_pass_keeps_outputs(pass_name: str, case_name: str) -> None:
    assert case_name in {m.name for m in MODELS}
    case = get_model(case_name)
    meta_args, meta_kwargs = case.inputs("meta")
    before = extract_ir(
        case.build_meta(), meta_args, example_kwargs=meta_kwargs, dynamic_shapes=case.dynamic_shapes, pipeline="none"
    )
    after = copy.deepcopy(before)
    PassManager(pass_name).run(after)
    after.verify()
    real = case.build_real()
    args, kwargs = case.inputs("cpu")
    expected = _outputs(before, real, args, kwargs)
    got = _outputs(after, real, args, kwargs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=case.rtol, atol=case.atol)
