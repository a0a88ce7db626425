"""The IR file is deterministic: the same model, options and versions give the same bytes in any process,
whatever its hash seed; the run record (stage and pass timings, memory) is opt-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.models import get_model
from torch_ir import extract_ir, load_ir
from torch_ir.cli import main
from torch_ir.serde import dumps

REPO = Path(__file__).resolve().parents[1]

_SAVE_GPT = """
import sys
from torch_ir import extract_ir
from torch_ir.frontends.model_specs import resolve_model
bundle = resolve_model("zoo:gpt")
extract_ir(bundle.model, bundle.args).save(sys.argv[1])
"""


def _run(argv: list[str], seed: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": seed}
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_save_is_byte_identical_in_processes_with_different_hash_seeds(tmp_path: Path) -> None:
    for seed in ("1", "2"):
        _run(["-c", _SAVE_GPT, str(tmp_path / f"gpt-{seed}.json")], seed, tmp_path)
    first, second = (tmp_path / "gpt-1.json").read_bytes(), (tmp_path / "gpt-2.json").read_bytes()
    assert first == second
    doc = json.loads(first)
    assert "stages" not in doc and all("seconds" not in row for row in doc["pass_log"])
    assert doc["pass_log"][0]["pass"] == "annotate-shapes"  # the pass log itself stays


def test_cli_extract_twice_gives_identical_bytes(tmp_path: Path) -> None:
    for seed, folder in (("3", "a"), ("4", "b")):
        (tmp_path / folder).mkdir()
        _run(["-m", "torch_ir", "extract", "zoo:gpt", "-o", "a.json", "-q"], seed, tmp_path / folder)
    assert (tmp_path / "a" / "a.json").read_bytes() == (tmp_path / "b" / "a.json").read_bytes()


def test_the_run_record_is_opt_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain, recorded = tmp_path / "plain.json", tmp_path / "recorded.json"
    assert main(["extract", "zoo:gpt", "-o", str(plain), "-q"]) == 0
    assert main(["extract", "zoo:gpt", "-o", str(recorded), "--record-run", "-q"]) == 0
    assert "stages" not in json.loads(plain.read_text())
    doc = json.loads(recorded.read_text())
    assert [s["stage"] for s in doc["stages"]][:2] == ["build", "export"] and doc["stages"][0]["seconds"] >= 0
    assert all("seconds" in row for row in doc["pass_log"])
    out = tmp_path / "opt.json"
    assert main(["opt", str(plain), "-p", "cse", "-o", str(out), "--record-run"]) == 0
    assert "seconds" in json.loads(out.read_text())["pass_log"][-1]
    assert main(["opt", str(plain), "-p", "cse", "--record-run"]) == 2  # text on stdout has no run record
    assert "--record-run adds timings to a JSON output" in capsys.readouterr().err


def test_python_save_takes_run_record_and_old_files_with_timings_still_load(tmp_path: Path) -> None:
    case = get_model("two_tower")
    args, kwargs = case.inputs("meta")
    ir = extract_ir(case.build_meta(), args, example_kwargs=kwargs)
    with_record, without = tmp_path / "with.json", tmp_path / "without.json"
    ir.save(with_record, run_record=True)
    ir.save(without)
    assert '"stages"' in with_record.read_text() and '"seconds"' in with_record.read_text()
    loaded = load_ir(with_record)  # a file written with timings (as every file was before) loads
    assert loaded.stages.stages and loaded.stages.stages[0].seconds > 0
    assert dumps(loaded) == without.read_text()  # and saves back deterministically
    assert dumps(loaded, run_record=True) == with_record.read_text()


def test_a_program_read_back_saves_the_same_bytes(tmp_path: Path) -> None:
    """A module read from a file (or the text form) writes the bytes it was read from: no field left out in
    one and written in the other (the state's default ``init`` read back is an equal, not the same, string)."""
    from tests.transformers_models import build_causal_lm
    from torch_ir import extract_llm
    from torch_ir.ir.text import parse_module

    ir = extract_llm(build_causal_lm("llama", "meta"), max_cache_len=16)
    path = tmp_path / "llm.json"
    ir.save(path)
    assert '"init"' not in path.read_text()  # "zeros", the default, is left out
    assert dumps(load_ir(path)) == path.read_text()
    back = parse_module(ir.to_text(metadata=True))
    back.pass_log = ir.pass_log
    assert dumps(back) == path.read_text()
