"""docs/extending.md: the complete custom pass runs as written and does what the page says."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from torch_ir.passes.registry import unregister_pass

PAGE = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def test_the_30_line_pass_runs_as_written(capsys: pytest.CaptureFixture) -> None:
    block = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)[0]
    code_lines = [line for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert len(code_lines) <= 40
    module = types.ModuleType("docs_extending")  # dataclasses look their module up in sys.modules
    sys.modules[module.__name__] = module
    namespace = module.__dict__
    try:
        exec(compile(block, str(PAGE), "exec"), namespace)
    finally:
        unregister_pass("fuse-swish")
        sys.modules.pop(module.__name__, None)
    out = capsys.readouterr().out
    ops = re.findall(r"= (\S+)\(", out)
    assert ops == ["aten.silu.default"], out
    namespace["graph"].verify()
