"""docs/operators.md lists exactly the ops the test suite runs through the interpreter, and it and the OpInfo
results say which versions made them: the ones requirements.lock pins, which the check runs against."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gen_operators_doc.py"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_operators_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_operators_doc_was_made_with_the_locked_versions(generator: ModuleType) -> None:
    recorded = generator.recorded_versions(generator.DOC.read_text())
    locked = generator.locked_versions()
    assert recorded == locked, (
        f"docs/operators.md was made with {recorded or 'unrecorded versions'}, but requirements.lock pins {locked}: "
        "run make install, then python scripts/gen_operators_doc.py"
    )


def test_opinfo_results_were_made_with_the_locked_torch(generator: ModuleType) -> None:
    sweep = json.loads(generator.OPINFO_RESULTS.read_text())
    locked = generator.locked_versions()["torch"].split("+")[0]
    assert sweep["torch"] == locked, (
        f"docs/opinfo-results.json was made with torch {sweep['torch']}, but requirements.lock pins {locked}: "
        "run make optest in the locked environment"
    )
    assert f"torch {sweep['torch']}, `extract_ir` device" in generator.DOC.read_text()


def test_operators_doc_is_up_to_date(generator: ModuleType) -> None:
    pytest.importorskip("transformers")
    drift = generator.version_drift()
    if drift is not None:
        pytest.fail(drift)  # a stale-looking page would be a wrong verdict: it was made with other versions
    expected = generator.render(generator.collect_op_types())
    current = generator.DOC.read_text() if generator.DOC.exists() else ""
    assert current == expected, "docs/operators.md is out of date: run python scripts/gen_operators_doc.py"


def test_a_page_from_other_versions_is_named_as_such(
    generator: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("torch==2.13.0+cpu \\\n    --hash=sha256:00\ntransformers==99.0.0 \\\n    --hash=sha256:00\n")
    monkeypatch.setattr(generator, "LOCK", lock)
    drift = generator.version_drift()
    installed = generator.installed_versions()["transformers"]
    assert drift is not None and "requirements.lock pins torch 2.13.0+cpu, transformers 99.0.0" in drift
    assert f"this environment has torch {generator.installed_versions()['torch']}, transformers {installed}" in drift
    assert "docs/operators.md was made with torch" in drift
    page = generator.render({"aten.add.Tensor": {"m"}}, {"torch": "2.13.0", "device": "default", "results": []})
    assert generator.recorded_versions(page) == generator.installed_versions()
