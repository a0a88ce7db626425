"""Verifying an LLM program by generation: greedy decoding through the IR's ``prefill`` and ``decode``
entries, step by step against eager transformers with the same weights and the same static cache.

Step 0 is the prefill of a prompt (random token ids, or given), steps 1..N are decode steps. Each step's
logits are compared within the dtype's tolerance (scaled by their magnitude) and its greedy token with
eager's, exactly, unless eager's own logits of the two tokens are within that tolerance of each other (a
tie no IR could be blamed for). Both sides are fed eager's token (teacher forcing), so one wrong step does
not hide the next. The report names the first step where they part and, where it can, the first node of
that entry whose value differs.

A verification runs ``trials`` generations, each from a prompt drawn with its own seed; from the second
on, the model's constant weights (norm weights of 1, zero biases) are redrawn on both sides. The program
runs on private copies of the weights: one it writes into fails the verification, naming the node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from torch_ir.analysis.input_ranges import input_index_bounds
from torch_ir.errors import InputError, RunLimitError, TorchIRError, VerificationError
from torch_ir.ir.module import IR
from torch_ir.runtime.coverage import RegionCoverage, coverage_warnings, region_paths
from torch_ir.runtime.given_weights import verification_source
from torch_ir.runtime.informative_weights import redrawn_weights
from torch_ir.runtime.interpreter import Interpreter
from torch_ir.runtime.isolation import describe_writer, find_writers
from torch_ir.runtime.program import ProgramRunner
from torch_ir.runtime.verifier import (
    DEFAULT_TRIALS,
    Comparison,
    Divergence,
    Trial,
    compare_tensors,
    find_divergence,
    trial_lines,
)
from torch_ir.runtime.weights import ChainSource, MappingSource, WeightSource, as_source

ENTRIES = ("prefill", "decode")


@dataclass
class StepCheck:
    """One generation step: which entry ran, how its logits compared, and the greedy token on each side."""

    step: int
    entry: str
    comparison: Comparison
    token_ir: int
    token_eager: int
    tie: bool = False
    """The tokens differ, but eager's logits of the two are within tolerance of each other."""

    @property
    def passed(self) -> bool:
        """Logits within tolerance and the same greedy token (or a tie)."""
        return self.comparison.passed and (self.token_ir == self.token_eager or self.tie)


@dataclass
class GenerationReport:
    """The result of ``verify_generation``: one check per step (of the failing trial, or of trial 0), the
    first divergence, any error, the trials and the regions they reached."""

    model: str
    passed: bool
    prompt: list[int] = field(default_factory=list)
    steps: list[StepCheck] = field(default_factory=list)
    first_failure: StepCheck | None = None
    divergence: Divergence | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)
    coverage: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    weight_sources: dict[str, str] = field(default_factory=dict)

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
                    "rtol": s.comparison.rtol,
                    "atol": s.comparison.atol,
                    "token_ir": s.token_ir,
                    "token_eager": s.token_eager,
                    "tie": s.tie,
                    "problem": s.comparison.problem,
                }
                for s in self.steps
            ],
            "first_failure": None if self.first_failure is None else self.first_failure.step,
            "divergence": None
            if self.divergence is None
            else {
                "node": self.divergence.node,
                "op_type": self.divergence.op_type,
                "value": self.divergence.value,
                "module_path": self.divergence.module_path,
                **({} if self.divergence.site is None else self.divergence.site.to_dict()),
            },
            "notes": list(self.notes),
            "trials": [t.to_dict() for t in self.trials],
            "coverage": dict(self.coverage),
            "warnings": list(self.warnings),
            "weight_sources": dict(self.weight_sources),
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
                extra = f": {c.problem}" if c.problem else (": a tie in eager's logits" if s.tie and s.passed else "")
                lines.append(
                    f"  {s.step:>4}  {s.entry:<8} {c.max_abs:>10.3g} {c.max_rel:>10.3g}  {tokens:>15}  {verdict}{extra}"
                )
        if self.first_failure is not None:
            lines.append(f"  first divergence: step {self.first_failure.step} ({self.first_failure.entry})")
        d = self.divergence
        if d is not None:
            lines.append(f"    first node that differs: {d.node} ({d.op_type}), value %{d.value}")
            if d.site is not None:
                lines.append(f"    in call {d.site.call} of function {d.site.function} (its node {d.site.node})")
            if d.module_path:
                lines.append(f"    module: {d.module_path}")
            if d.location:
                lines.append(f"    source: {d.location}")
        if self.weight_sources:
            lines.append(f"  weights not from the given weights ({len(self.weight_sources)}):")
            lines.extend(f"    {name}: {where}" for name, where in self.weight_sources.items())
        lines.extend(trial_lines(self.trials, self.coverage))
        lines.extend(f"  warning: {w}" for w in self.warnings)
        lines.extend(f"  note: {note}" for note in self.notes)
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
    trials: int = DEFAULT_TRIALS,
    fill_missing_from_model: bool = False,
    redraw_constants: bool = True,
) -> tuple[bool, GenerationReport]:
    """Greedy decoding of ``steps`` tokens through the IR's entries against eager ``model`` (a transformers
    causal LM with real weights) in transformers' static-cache module, in ``trials`` trials: trial 0 from
    ``prompt`` when given, trial ``t`` from ``prompt_len`` token ids drawn with seed ``seed + t``, with the
    model's constant weights redrawn from trial 1 on (``redraw_constants``). ``weights`` default to the
    model's; when given, every parameter and persistent buffer of the model must come from them (as in
    ``verify_ir_with_state_dict``). A prompt the program cannot embed raises ``InputError``.
    """
    missing = [e for e in ENTRIES if e not in ir.entries]
    if missing or not ir.state:
        raise VerificationError(
            f"generation needs a program with prefill and decode entries and declared state; this IR has "
            f"entries {', '.join(ir.entries)}: extract it with extract_llm / torch-ir extract --kv-cache static"
        )
    if not isinstance(steps, int) or steps < 0:
        raise VerificationError(f"steps must be a non-negative integer, got {steps!r}")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise VerificationError(f"trials must be a positive integer, got {trials!r}")
    batch, max_cache_len = _cache_shape(ir)
    vocab = _vocabulary(ir, model)
    given = as_source(model if weights is None else weights)
    source, weight_sources = verification_source(
        list(ir.entries.values()), given, model, fill=fill_missing_from_model, exclude=ir.state
    )
    report = GenerationReport(str(ir.graph.meta.get("model", type(model).__name__)), False)
    report.weight_sources = weight_sources
    runner = ProgramRunner(ir, source, device=device, strict=False)
    check = _Generation(ir, model, runner, report, (batch, max_cache_len, steps), (rtol, atol))
    label = "given"
    try:
        with torch.no_grad():
            for index in range(trials):
                if index == 1 and redraw_constants:
                    label = check.redraw(redrawn_weights(model, torch.Generator().manual_seed(seed)), source) or label
                trial_prompt = _prompt(prompt if index == 0 else None, prompt_len, batch, seed + index, vocab)
                if trial_prompt.shape[1] + steps > max_cache_len:
                    raise VerificationError(
                        f"a {trial_prompt.shape[1]}-token prompt and {steps} steps need "
                        f"{trial_prompt.shape[1] + steps} cache positions; the program's cache holds {max_cache_len}"
                    )
                passed = check.run(trial_prompt, keep=index == 0)
                inputs = f"prompt of {trial_prompt.shape[1]} tokens in 0..{vocab - 1}"
                report.trials.append(Trial(index, seed + index, inputs, label, passed))
                if not passed:
                    if localize and report.first_failure is not None and not report.error:
                        report.divergence = check.localize()
                    break
    finally:
        check.restore_model()
        runner.close()
    report.coverage = {path: check.reached.get(path, 0) for path in _region_paths(ir)}
    for name, graph in ir.entries.items():
        prefix = f"{name}:"
        reached = {p.removeprefix(prefix): n for p, n in report.coverage.items() if p.startswith(prefix)}
        report.warnings.extend(f"{name}: {w}" for w in coverage_warnings(graph, reached))
    functions = {p: n for p, n in report.coverage.items() if p.startswith("@")}
    report.warnings.extend(coverage_warnings(None, functions, ir))
    report.passed = bool(report.trials) and all(t.passed for t in report.trials) and not report.error
    return report.passed, report


def _region_paths(ir: IR) -> list[str]:
    """The regions of every entry, each path prefixed by its entry (``decode:cond_1/true``)."""
    entries = [f"{name}:{path}" for name, graph in ir.entries.items() for path, _, _ in region_paths(graph)]
    return entries + [path for path, _, _ in region_paths(None, module=ir)]


class _Generation:
    """One program and model under test: runs trials of greedy decoding and localizes a failing step."""

    def __init__(
        self,
        ir: IR,
        model: torch.nn.Module,
        runner: ProgramRunner,
        report: GenerationReport,
        shape: tuple[int, int, int],
        tolerance: tuple[float | None, float | None],
    ):
        self.ir, self.model, self.runner, self.report = ir, model, runner, report
        self.shape = shape
        """Batch size, cache length and decode steps."""
        self.tolerance = tolerance
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.reached: Counter[str] = Counter()
        self.named = {
            **dict(model.named_parameters(remove_duplicate=False)),
            **dict(model.named_buffers(remove_duplicate=False)),
        }
        self.originals: dict[str, torch.Tensor] = {}

    def redraw(self, redrawn: Mapping[str, torch.Tensor], source: WeightSource) -> str:
        """Put ``redrawn`` into the model and the program's weights; the label of the weights ('' for none)."""
        if not redrawn:
            return ""
        for name, value in redrawn.items():
            self.originals.setdefault(name, self.named[name].detach().clone())
            self.named[name].copy_(value)
        ours = {name: value for name, value in redrawn.items() if name in source}
        self.runner.rebind(ChainSource(MappingSource(ours, "redrawn constants"), source))
        return f"given, {len({id(v) for v in redrawn.values()})} constant tensor(s) redrawn"

    def restore_model(self) -> None:
        """Put back the model's weights that ``redraw`` changed."""
        with torch.no_grad():
            for name, value in self.originals.items():
                self.named[name].copy_(value)

    def run(self, prompt: torch.Tensor, *, keep: bool) -> bool:
        """One greedy generation from ``prompt``; True when every step matched. The steps of a failing trial
        (and, with ``keep``, of a passing one) go to the report."""
        from torch_ir.frontends.llm import build_cache_module

        batch, max_cache_len, steps = self.shape
        rtol, atol = self.tolerance
        self.runner.reset()
        eager = build_cache_module(self.model, batch, max_cache_len, "cpu")
        checks: list[StepCheck] = []
        calls: list[tuple[str, dict[str, Any]]] = []
        length = prompt.shape[1]
        kwargs: dict[str, Any] = {"input_ids": prompt, "cache_position": torch.arange(length)}
        failure: StepCheck | None = None
        error = ""
        coverage = {entry: RegionCoverage() for entry in self.ir.entries}
        for step in range(steps + 1):
            entry = "prefill" if step == 0 else "decode"
            calls.append((entry, kwargs))
            expected = eager(**kwargs)
            try:
                with coverage[entry].recording():
                    got = self.runner(entry, **{k: v.clone() for k, v in kwargs.items()})
            except RunLimitError:
                raise  # refused or stopped by a limit: no verdict on the program
            except TorchIRError as exc:
                error = f"step {step} ({entry}): {exc}"
                break
            check = _step_check(step, entry, got, expected, rtol, atol)
            checks.append(check)
            if not check.passed and failure is None:
                failure = check
            token = expected[:, -1:].argmax(-1)
            kwargs = {"input_ids": token, "cache_position": torch.tensor([length])}
            length += 1
        self.reached.update(  # a private function's regions count once, whichever entry called it
            {path if path.startswith("@") else f"{entry}:{path}" for entry, r in coverage.items() for path in r.counts}
        )
        written = self.runner.written()
        if written and not error:
            shown = ", ".join(written[:8]) + (", ..." if len(written) > 8 else "")
            error = f"the program wrote into {len(written)} weight(s) ({shown}): {self._writer(calls, written)}"
        if keep or failure is not None or error:
            self.report.prompt, self.report.steps, self.report.first_failure = prompt[0].tolist(), checks, failure
            self.calls = calls
        if error:
            self.report.error = error
        return failure is None and not error

    def _writer(self, calls: list[tuple[str, dict[str, Any]]], keys: list[str]) -> str:
        """Which node wrote into the weights: the calls replayed node by node on fresh copies."""
        runner = self.runner
        runner.rebind()
        source = runner.weights_copy
        watched = [(source.copies[key], source.source.load(key)) for key in keys]
        try:
            for index, (entry, kwargs) in enumerate(calls):
                interp = runner.prepared(entry)
                inputs = interp.flatten_inputs((), {k: v.clone() for k, v in kwargs.items()})
                if isinstance(interp, Interpreter):  # the copies its plan made of weights it may write, too
                    graph = interp.graph
                    copies = [
                        (tensor, source.source.load(key))
                        for name, tensor in interp.weights.items()
                        for key in [next((k for k in graph.weight(name).names if k in keys), None)]
                        if key is not None and tensor is not source.copies.get(key)
                    ]
                    nodes = find_writers(interp, inputs, [*watched, *copies])
                else:  # the copies live in the worker: the replay runs there
                    graph = interp.graph
                    names = [n for n in graph.weights if set(graph.weight(n).names) & set(keys)]
                    nodes = interp.writers(inputs, names, [])
                node = next((n for n in nodes if n is not None), None)
                if node is not None:
                    return f"step {index} ({entry}): {describe_writer(node)}"
                runner(entry, **{k: v.clone() for k, v in kwargs.items()})
            return describe_writer(None)
        except TorchIRError as exc:
            return f"the replay failed ({exc})"
        finally:
            runner.rebind()

    def localize(self) -> Divergence | None:
        """Replay the steps before the failing one on fresh state (the IR's and a fresh eager cache), then
        the failing step node by node on both sides. Nothing is copied while generation runs."""
        from torch_ir.frontends.llm import build_cache_module

        batch, max_cache_len, _ = self.shape
        failure = self.report.first_failure
        assert failure is not None
        *before, (entry, kwargs) = self.calls[: failure.step + 1]
        try:
            self.runner.rebind()
            eager = build_cache_module(self.model, batch, max_cache_len, "cpu")
            for done_entry, done_kwargs in before:
                self.runner(done_entry, **done_kwargs)
                eager(**done_kwargs)
            return find_divergence(self.runner.prepared(entry), eager, (), kwargs, *self.tolerance)
        except Exception as exc:  # localization is best effort: the verdict stands without it
            self.report.notes.append(f"could not localize the divergence: {type(exc).__name__}: {exc}")
            return None


def _step_check(step: int, entry: str, got: Any, expected: Any, rtol: float | None, atol: float | None) -> StepCheck:
    """The step's logits compared, and its greedy tokens: equal, or a tie in eager's own logits."""
    comparison = compare_tensors(got, expected, rtol, atol)
    token_ir, token_eager = _token(got), _token(expected)
    tie = False
    if token_ir != token_eager and comparison.passed:
        last = expected[0, -1].double()
        gap = float(last[token_eager] - last[token_ir])
        tie = gap <= 2 * (comparison.atol + comparison.rtol * float(last[token_eager].abs()))
    return StepCheck(step, entry, comparison, token_ir, token_eager, tie)


def _cache_shape(ir: IR) -> tuple[int, int]:
    """Batch size and cache length from the declared KV cache (``[batch, heads, length, head_dim]``)."""
    for spec in ir.state.values():
        if len(spec.type.shape) == 4:
            batch, _, length, _ = spec.type.shape
            return int(batch), int(length)
    raise VerificationError("the program declares no KV-cache tensor ([batch, heads, length, head_dim])")


def _vocabulary(ir: IR, model: torch.nn.Module) -> int:
    """How many token ids the model embeds (its input embedding's rows, else its config's vocabulary; the
    program's own embedding when the model says neither)."""
    embeddings = getattr(model, "get_input_embeddings", None)
    try:
        table = embeddings() if callable(embeddings) else None
    except NotImplementedError:  # transformers' default for a model that does not say where its embedding is
        table = None
    if isinstance(table, torch.nn.Embedding):
        return int(table.num_embeddings)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if isinstance(vocab, int) and vocab > 0:
        return vocab
    bound = input_index_bounds(ir.entry("prefill"), {n: f.graph for n, f in ir.functions.items()}).get("input_ids")
    return bound.high if bound is not None else 100


def _prompt(prompt: torch.Tensor | None, length: int, batch: int, seed: int, vocab: int) -> torch.Tensor:
    """The given prompt (checked to be ids the program embeds), or ``length`` random ids of the vocabulary."""
    if prompt is not None:
        prompt = torch.as_tensor(prompt, dtype=torch.long)
        if prompt.dim() == 1:
            prompt = prompt[None]
        if prompt.numel() and (int(prompt.min()) < 0 or int(prompt.max()) >= vocab):
            raise InputError(
                f"the prompt holds token ids {int(prompt.min())}..{int(prompt.max())}; the program embeds ids "
                f"0..{vocab - 1}"
            )
    else:
        prompt = torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))
    if prompt.dim() != 2 or prompt.shape[0] != batch or prompt.shape[1] < 2:
        raise InputError(f"the prompt must be [{batch}, length >= 2] token ids, got {list(prompt.shape)}")
    return prompt


def _token(logits: torch.Tensor) -> int:
    return int(logits[0, -1].argmax())


__all__ = ["GenerationReport", "StepCheck", "verify_generation"]
