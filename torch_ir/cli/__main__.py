"""``python -m torch_ir.cli``: the ``torch-ir`` command line."""

from __future__ import annotations

from torch_ir.cli import run

run()
