"""Program diagrams and reports say what the program does: every decoder layer folds alike, the KV cache is
drawn as state with its write-backs, an entry's report lists the passes run on it, and pass timings do
not include torch's import."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.testing.mermaid import check_mermaid
from tests.transformers_models import TINY
from torch_ir import load_ir
from torch_ir.backends.mermaid import render_mermaid
from torch_ir.cli import main

pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[1]
FOUR_LAYERS = ",".join(f"{k}={v}" for k, v in {**TINY["llama"], "num_hidden_layers": 4}.items())


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("llm") / "llm.json"
    cache = ["--kv-cache", "static", "--max-cache-len", "16"]
    assert main(["extract", "hf:llama", "--config", FOUR_LAYERS, *cache, "-o", str(path), "-q"]) == 0
    return path


def _ids_of_class(diagram: str, kind: str) -> set[str]:
    match = re.search(rf"^\s*class (\S+) {kind}$", diagram, re.M)
    return set(match.group(1).split(",")) if match else set()


def _item_id(diagram: str, label_start: str) -> str:
    match = re.search(rf'^\s*(\w+)\W+"{re.escape(label_start)}', diagram, re.M)
    assert match, f"no node labelled {label_start!r}"
    return match.group(1)


@pytest.mark.parametrize("entry", ["prefill", "decode"])
def test_every_layer_folds_alike(program: Path, entry: str) -> None:
    diagram = render_mermaid(load_ir(program).entry(entry))
    check_mermaid(diagram)
    assert "model.layers.0 … 3  x4<br/>LlamaDecoderLayer" in diagram
    assert "model.layers.0: LlamaDecoderLayer" not in diagram  # no layer drawn apart from the others


def test_the_kv_cache_is_state_and_its_write_backs_are_drawn(program: Path) -> None:
    decode = load_ir(program).entry("decode")
    folded = render_mermaid(decode)
    update = _item_id(folded, "update @key_cache_0, @value_cache_0, @cumulative_length_0, … (12 in all)")
    assert update in _ids_of_class(folded, "update")
    fold = _item_id(folded, "model.layers.0 … 3  x4")
    assert re.search(rf"^\s*{fold} -->\|[^|]*\| {update}$", folded, re.M)  # what computes them feeds them
    drawn = render_mermaid(decode, fold_repeats=False, max_nodes=1000, max_edges=2000)
    check_mermaid(drawn)
    state, weights = _ids_of_class(drawn, "state"), _ids_of_class(drawn, "weight")
    cache = _item_id(drawn, "key_cache_0<br/>f32[1,2,16,8]<br/>state")
    assert cache in state and cache not in weights
    assert _item_id(drawn, "model.embed_tokens.weight") in weights
    update = _item_id(drawn, "update @key_cache_0<br/>f32[1,2,16,8]")
    index_copy = next(u for u in decode.state_updates if u.target == "key_cache_0").value.producer
    assert index_copy is not None and index_copy.op_type == "aten.index_copy.default"
    assert re.search(rf'-->\|"f32\[1,2,16,8\]"\| {update}$', drawn, re.M)
    assert len(_ids_of_class(drawn, "update")) == len(decode.state_updates) == 12


def test_an_entry_report_lists_the_passes_run_on_it(program: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The pass log has one row per pass over the whole module: an entry's report lists them all and says
    that each ran on every function."""
    assert main(["report", str(program), "--entry", "decode"]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("| passes run |"))
    assert row.startswith("| passes run | 6 (annotate-shapes, canonicalize, cse")
    assert row.endswith(", each on every function of the module (prefill, decode) |")
    assert "none recorded" not in text
    assert main(["report", str(program)]) == 0  # the program's report: every entry's section says the same
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| passes run |")]
    assert rows == [row, row]


def test_an_entry_report_of_a_version_5_file_keeps_that_entrys_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """Files of version 5 logged each pass once per entry, naming it: an entry's report keeps its own rows."""
    fixture = REPO / "tests" / "fixtures" / "formats" / "v5_program.json"
    assert main(["report", str(fixture), "--entry", "decode"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| passes run |"))
    assert row == (
        "| passes run | 6 (annotate-shapes, canonicalize, cse, dedup-weights, hoist-weights, eliminate-dead-nodes) |"
    )


_FIRST_PASS = """
import sys
from dataclasses import dataclass
from typing import ClassVar

from torch_ir import Pass, PassResult, register_pass


@register_pass
@dataclass(frozen=True)
class SeesTorch(Pass):
    \"\"\"Says whether torch was imported before it ran.\"\"\"

    name: ClassVar[str] = "sees-torch"

    def run(self, graph, ctx):
        print(f"torch loaded before the first pass: {'torch' in sys.modules}", file=sys.stderr)
        return PassResult(graph, False)
"""


def test_timing_does_not_charge_torchs_import_to_the_first_pass(program: Path, tmp_path: Path) -> None:
    (tmp_path / "sees_torch.py").write_text(_FIRST_PASS)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"}
    argv = ["opt", str(program), "-p", "sees-torch,cse", "--plugin", "sees_torch", "--timing", "-o", "-"]
    proc = subprocess.run([sys.executable, "-m", "torch_ir", *argv], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "torch loaded before the first pass: True" in proc.stderr
    assert "(before the first pass: torch import and setup," in proc.stderr
