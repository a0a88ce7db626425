"""Kept so that ``plugins = ["examples.custom_pass"]`` still works: the pass is ``fuse-linear-act`` of
``examples.passes.linear_activation`` (written with the pattern rewriter); see ``examples/passes/``."""

from __future__ import annotations

from examples.passes.linear_activation import ACTIVATIONS, FuseLinearActivation, rule

__all__ = ["ACTIVATIONS", "FuseLinearActivation", "rule"]
