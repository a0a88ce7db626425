"""Passes over the IR: the ``Pass`` contract, the registry, pipeline specs and the ``PassManager``."""

from torch_ir.passes.base import Pass, PassContext, PassOption, PassResult
from torch_ir.passes.manager import (
    DumpIR,
    Instrumentation,
    PassManager,
    PrintIR,
    Timing,
    VerifyEach,
    format_pass_log,
    run_pipeline,
)
from torch_ir.passes.pipeline import DEFAULT_PIPELINE, Pipeline, parse_pipeline, resolve_pipeline
from torch_ir.passes.registry import all_passes, get_pass, load_plugins, register_pass

__all__ = [
    "DEFAULT_PIPELINE",
    "DumpIR",
    "Instrumentation",
    "Pass",
    "PassContext",
    "PassManager",
    "PassOption",
    "PassResult",
    "Pipeline",
    "PrintIR",
    "Timing",
    "VerifyEach",
    "all_passes",
    "format_pass_log",
    "get_pass",
    "load_plugins",
    "parse_pipeline",
    "register_pass",
    "resolve_pipeline",
    "run_pipeline",
]
