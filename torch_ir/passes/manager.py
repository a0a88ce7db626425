"""Running pipelines on an IR."""

from __future__ import annotations

from typing import Any

from torch_ir.errors import PipelineSpecError
from torch_ir.ir.program import IR


def run_pipeline(ir: IR, pipeline: Any) -> None:
    """Run ``pipeline`` on ``ir`` in place (no passes exist yet: only "default" and "none" are known)."""
    if pipeline in (None, "none", "default"):
        return
    raise PipelineSpecError(f"unknown pipeline {pipeline!r}")
