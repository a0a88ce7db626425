"""Verifying an LLM program by generation: greedy decoding through the IR's ``prefill`` and ``decode``
entries, step by step against eager transformers with the same weights and the same static cache.

Step 0 is the prefill of a prompt (random token ids, or given), steps 1..N are decode steps. Each step's
logits are compared within tolerance and its greedy token with eager's; both sides are fed eager's token
(teacher forcing), so one wrong step does not hide the next. The report names the first step where they
part and, where it can, the first node of that entry whose value differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from torch_ir.errors import RunLimitError, TorchIRError, VerificationError
from torch_ir.ir.module import IR
from torch_ir.runtime.program import ProgramRunner
from torch_ir.runtime.verifier import Comparison, Divergence, compare_tensors, find_divergence
from torch_ir.runtime.weights import ChainSource, MappingSource, as_source

ENTRIES = ("prefill", "decode")


@dataclass
class StepCheck:
    """One generation step: which entry ran, how its logits compared, and the greedy token on each side."""

    step: int
    entry: str
    comparison: Comparison
    token_ir: int
    token_eager: int

    @property
    def passed(self) -> bool:
        """Logits within tolerance and the same greedy token."""
        return self.comparison.passed and self.token_ir == self.token_eager


@dataclass
class GenerationReport:
    """The result of ``verify_generation``: one check per step, the first divergence, any error."""

    model: str
    passed: bool
    prompt: list[int] = field(default_factory=list)
    steps: list[StepCheck] = field(default_factory=list)
    first_failure: StepCheck | None = None
    divergence: Divergence | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        return {
            "model": self.model,
            "passed": self.passed,
            "prompt": self.prompt,
            "error": self.error,
            "steps": [
                {
                    "step": s.step,
                    "entry": s.entry,
                    "passed": s.passed,
                    "max_abs": s.comparison.max_abs,
                    "max_rel": s.comparison.max_rel,
                    "token_ir": s.token_ir,
                    "token_eager": s.token_eager,
                    "problem": s.comparison.problem,
                }
                for s in self.steps
            ],
            "first_failure": None if self.first_failure is None else self.first_failure.step,
            "divergence": None
            if self.divergence is None
            else {"node": self.divergence.node, "op_type": self.divergence.op_type, "value": self.divergence.value},
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [f"generation check of {self.model}: {'PASSED' if self.passed else 'FAILED'}"]
        if self.prompt:
            lines.append(f"  prompt ({len(self.prompt)} tokens): {self.prompt}")
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.steps:
            lines.append(f"  {'step':>4}  {'entry':<8} {'max abs':>10} {'max rel':>10}  {'token ir/eager':>15}  result")
            for s in self.steps:
                c = s.comparison
                tokens = f"{s.token_ir}/{s.token_eager}"
                verdict = "ok" if s.passed else "FAIL"
                extra = f": {c.problem}" if c.problem else ""
                lines.append(
                    f"  {s.step:>4}  {s.entry:<8} {c.max_abs:>10.3g} {c.max_rel:>10.3g}  {tokens:>15}  {verdict}{extra}"
                )
        if self.first_failure is not None:
            lines.append(f"  first divergence: step {self.first_failure.step} ({self.first_failure.entry})")
        d = self.divergence
        if d is not None:
            lines.append(f"    first node that differs: {d.node} ({d.op_type}), value %{d.value}")
            if d.module_path:
                lines.append(f"    module: {d.module_path}")
            if d.location:
                lines.append(f"    source: {d.location}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


def verify_generation(
    ir: IR,
    model: torch.nn.Module,
    *,
    steps: int,
    weights: Any = None,
    prompt: torch.Tensor | None = None,
    prompt_len: int = 8,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    device: str | torch.device = "cpu",
    localize: bool = True,
) -> tuple[bool, GenerationReport]:
    """Greedy decoding of ``steps`` tokens through the IR's entries against eager ``model`` (a transformers
    causal LM with real weights) in transformers' static-cache module. ``weights`` default to the model's.
    """
    from torch_ir.frontends.llm import build_cache_module

    missing = [e for e in ENTRIES if e not in ir.entries]
    if missing or not ir.state:
        raise VerificationError(
            f"generation needs a program with prefill and decode entries and declared state; this IR has "
            f"entries {', '.join(ir.entries)}: extract it with extract_llm / torch-ir extract --kv-cache static"
        )
    if not isinstance(steps, int) or steps < 0:
        raise VerificationError(f"steps must be a non-negative integer, got {steps!r}")
    batch, max_cache_len = _cache_shape(ir)
    prompt = _prompt(model, prompt, prompt_len, batch, seed)
    if prompt.shape[1] + steps > max_cache_len:
        raise VerificationError(
            f"a {prompt.shape[1]}-token prompt and {steps} steps need {prompt.shape[1] + steps} cache positions; "
            f"the program's cache holds {max_cache_len}"
        )
    report = GenerationReport(str(ir.graph.meta.get("model", type(model).__name__)), False, prompt[0].tolist())
    eager = build_cache_module(model, batch, max_cache_len, "cpu")
    runner = ProgramRunner(ir, _with_non_persistent(weights, model), device=device, strict=False)
    try:
        calls: list[tuple[str, dict[str, Any]]] = []
        with torch.no_grad():
            length = prompt.shape[1]
            kwargs = {"input_ids": prompt, "cache_position": torch.arange(length)}
            for step in range(steps + 1):
                entry = "prefill" if step == 0 else "decode"
                calls.append((entry, kwargs))
                try:
                    got = runner(entry, **kwargs)
                except RunLimitError:
                    raise  # refused or stopped by a limit: no verdict on the IR
                except TorchIRError as exc:
                    report.error = f"step {step} ({entry}): {exc}"
                    return False, report
                expected = eager(**kwargs)
                check = StepCheck(
                    step, entry, compare_tensors(got, expected, rtol, atol), _token(got), _token(expected)
                )
                report.steps.append(check)
                if not check.passed and report.first_failure is None:
                    report.first_failure = check
                token = expected[:, -1:].argmax(-1)
                kwargs = {"input_ids": token, "cache_position": torch.tensor([length])}
                length += 1
            if report.first_failure is not None and localize:
                failed = calls[: report.first_failure.step + 1]
                report.divergence = _localize(runner, model, batch, max_cache_len, failed, rtol, atol, report)
    finally:
        runner.close()
    report.passed = report.first_failure is None and not report.error
    return report.passed, report


def _with_non_persistent(weights: Any, model: torch.nn.Module) -> Any:
    """The given weights plus the model's non-persistent buffers (never in a state_dict), nothing else."""
    if weights is None:
        return model
    persistent = set(model.state_dict())
    extra = {name: b for name, b in model.named_buffers(remove_duplicate=False) if name not in persistent}
    if not extra:
        return weights
    return ChainSource(as_source(weights), MappingSource(extra, f"non-persistent buffers of {type(model).__name__}"))


def _cache_shape(ir: IR) -> tuple[int, int]:
    """Batch size and cache length from the declared KV cache (``[batch, heads, length, head_dim]``)."""
    for spec in ir.state.values():
        if len(spec.type.shape) == 4:
            batch, _, length, _ = spec.type.shape
            return int(batch), int(length)
    raise VerificationError("the program declares no KV-cache tensor ([batch, heads, length, head_dim])")


def _prompt(model: torch.nn.Module, prompt: torch.Tensor | None, length: int, batch: int, seed: int) -> torch.Tensor:
    if prompt is not None:
        prompt = torch.as_tensor(prompt, dtype=torch.long)
        if prompt.dim() == 1:
            prompt = prompt[None]
    else:
        vocab = int(getattr(model.config, "vocab_size", 100))
        generator = torch.Generator().manual_seed(seed)
        prompt = torch.randint(0, vocab, (batch, length), generator=generator)
    if prompt.dim() != 2 or prompt.shape[0] != batch or prompt.shape[1] < 2:
        raise VerificationError(f"the prompt must be [{batch}, length >= 2] token ids, got {list(prompt.shape)}")
    return prompt


def _token(logits: torch.Tensor) -> int:
    return int(logits[0, -1].argmax())


def _localize(
    runner: ProgramRunner,
    model: torch.nn.Module,
    batch: int,
    max_cache_len: int,
    calls: list[tuple[str, dict[str, Any]]],
    rtol: float | None,
    atol: float | None,
    report: GenerationReport,
) -> Divergence | None:
    """Replay the steps before the failing one on fresh state (the IR's and a fresh eager cache), then the
    failing step node by node on both sides. Nothing is copied while generation runs."""
    from torch_ir.frontends.llm import build_cache_module

    *before, (entry, kwargs) = calls
    try:
        runner.reset()
        eager = build_cache_module(model, batch, max_cache_len, "cpu")
        for done_entry, done_kwargs in before:
            runner(done_entry, **done_kwargs)
            eager(**done_kwargs)
        return find_divergence(runner.prepared(entry), eager, (), kwargs, rtol, atol)
    except Exception as exc:  # localization is best effort: the verdict stands without it
        report.notes.append(f"could not localize the divergence: {type(exc).__name__}: {exc}")
        return None


__all__ = ["GenerationReport", "StepCheck", "verify_generation"]
