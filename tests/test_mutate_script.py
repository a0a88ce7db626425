"""``make mutate``'s configuration and report (scripts/mutate.py): every module names files that exist, and the
table says which rows are partial runs and which ran on files that have moved since."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import mutate  # noqa: E402


def _entry(files: list[str], **counts: int) -> dict:
    base = {"mutants": 10, "killed": 6, "survived": 2, "no tests": 1, "timeout": 1, "other": 0, "unchecked": 0}
    return {
        **base,
        **counts,
        "files": files,
        "tests": ["tests/test_x.py"],
        "date": "2026-12-06",
        "commit": "abc1234",
        "minutes": 1.0,
        "cpu_minutes": None,
        "versions": {"python": "3.11"},
        "machine": "2 cores, 2 mutmut workers",
        "survivors": [],
    }


def test_every_module_of_the_configuration_names_files_and_tests_that_exist() -> None:
    _, modules = mutate.load_config()
    assert {"pass-driver", "functions", "ir", "ops", "serde"} <= {m.name for m in modules}
    for module in modules:
        assert module.files(), module.name  # a glob that matches nothing raises MutateError
    serde = next(m for m in modules if m.name == "serde")
    assert "torch_ir/serde/upgraders.py" in serde.files()


def test_a_glob_that_matches_nothing_stops_the_run_with_the_module_name() -> None:
    with pytest.raises(mutate.MutateError, match=r"module old: no Python file matches 'torch_ir/backends/json.py'"):
        mutate.Module("old", ("torch_ir/backends/json.py",), ()).files()
    with pytest.raises(mutate.MutateError, match=r"module old: test path 'tests/test_gone.py' does not exist"):
        mutate.Module("old", ("torch_ir/errors.py",), ("tests/test_gone.py",)).files()


def test_the_table_marks_partial_runs_and_rows_of_files_that_moved() -> None:
    results = {
        "now": _entry(["torch_ir/passes/driver.py"]),
        "moved": _entry(["torch_ir/backends/json.py"], unchecked=5, killed=1),
    }
    files = {"now": ["torch_ir/passes/driver.py"], "moved": ["torch_ir/serde/reader.py"]}
    rows = {line.split(" | ")[0]: line for line in mutate.render_table(results, ["now", "moved"], files).splitlines()}
    assert "| 70% |" in rows["| now"] and "stale" not in rows["| now"]  # (6 killed + 1 timeout) / 10
    assert "| 40% of 5 checked (5 not reached) |" in rows["| moved"] and "**stale**" in rows["| moved"]
    assert "| 60% of 15 checked (5 not reached) |" in rows["| **all**"]


def test_the_short_table_of_survivors_names_each_modules_worst_functions_first() -> None:
    def survivor(function: str, status: str = "survived") -> dict:
        return {"file": "torch_ir/x.py", "function": function, "status": status, "name": "m__mutmut_1", "change": []}

    entry = _entry(["torch_ir/x.py"])
    entry["survivors"] = [
        *(survivor("few") for _ in range(2)),
        *(survivor("many") for _ in range(3)),
        survivor("many", "no tests"),
        *(survivor(f"tail_{i}") for i in range(3)),
    ]
    rows = mutate.survivor_table({"core": entry}, ["core"], top=3)
    assert rows[2:] == [
        "| core | `many` | `torch_ir/x.py` | 3 | 1 |",
        "| core | `few` | `torch_ir/x.py` | 2 | 0 |",
        "| core | `tail_0` | `torch_ir/x.py` | 1 | 0 |",
        "| core | 2 more functions | | 2 | 0 |",
    ]
    page = mutate.render_survivors({"core": entry}, ["core"])
    assert page.index("## Where they are") < page.index("| core | `many`") < page.index("## core")
