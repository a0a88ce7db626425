"""README.md's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_seed_example() -> None:
    blocks = _python_blocks()
    assert blocks and "extract_ir(model, example_inputs)" in blocks[0]


def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in _python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    nodes = int(re.search(r"Nodes: (\d+)", out).group(1))
    weights = int(re.search(r"Weights: (\d+)", out).group(1))
    assert nodes >= 5 and weights >= 6  # conv w/b, bn w/b/mean/var(/num_batches_tracked), fc w/b
    assert "aten.conv2d.default: [(1, 3, 224, 224), (16, 3, 3, 3), (16,)] -> [(1, 16, 224, 224)]" in out
    assert (tmp_path / "model_ir.json").stat().st_size > 0
    if "verify_ir_with_state_dict" in "".join(_python_blocks()):
        assert namespace["is_valid"] is True
