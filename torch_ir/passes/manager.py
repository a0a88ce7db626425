"""``PassManager``: runs a pipeline on a module with MLIR-style instrumentation, and ``run_pipeline``.

The manager runs each pass once on the whole module; the driver (``torch_ir.passes.driver``) walks the
functions, regions and init graph the pass's scope asks for. Instrumentation hooks (``Instrumentation``)
see the module: before/after the pipeline, before/after each pass, and after a failure. Built in:
``VerifyEach`` (on by default), ``Timing`` (prints the pass log as a table), ``PrintIR`` (text form
before/after named passes or all) and ``DumpIR`` (JSON + text after each pass). Every run appends one dict
per pass to ``ir.pass_log`` (and ``manager.log``).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from torch_ir.errors import PassError, PipelineSpecError, SerializationError, TorchIRError, VerificationError
from torch_ir.ir.graph import Graph
from torch_ir.ir.module import IR, Module
from torch_ir.passes.base import Pass, PassContext, PassResult
from torch_ir.passes.driver import run_pass
from torch_ir.passes.pipeline import Pipeline, resolve_pipeline

REPRODUCER_FORMAT = "torch-ir-reproducer"


class Instrumentation:
    """Hooks the manager calls around the pipeline and each pass; every method is a no-op here.

    Each hook gets the ``Module`` the pipeline runs on. ``index`` counts passes from 1 across steps.
    ``after_pass`` may raise to fail the pass (the manager turns the error into a ``PassError`` naming the
    pass); ``result.modified`` says whether the pass changed anything.
    """

    def before_pipeline(self, module: Module, manager: PassManager) -> None:
        """Called once before the first pass."""

    def after_pipeline(self, module: Module, manager: PassManager) -> None:
        """Called once after the last pass, when every pass succeeded."""

    def before_pass(self, p: Pass, module: Module, index: int) -> None:
        """Called before ``p`` runs."""

    def after_pass(self, p: Pass, module: Module, index: int, result: PassResult) -> None:
        """Called after ``p`` ran on every graph of its scope."""

    def after_failure(self, p: Pass, module: Module, index: int, error: PassError) -> None:
        """Called when ``p`` raised or left the module invalid, before the error propagates."""


class VerifyEach(Instrumentation):
    """Run the structural verifier on the module after each pass."""

    def after_pass(self, p: Pass, module: Module, index: int, result: PassResult) -> None:
        module.verify()


class Timing(Instrumentation):
    """Print the pass log (time, node and weight counts per pass) as a table after the pipeline."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def after_pipeline(self, module: Module, manager: PassManager) -> None:
        table = format_pass_log(manager.log)
        if manager.setup_seconds:
            table += f"\n     (before the first pass: torch import and setup, {manager.setup_seconds * 1e3:.2f} ms)"
        print(table, file=self.stream or sys.stderr)


class PrintIR(Instrumentation):
    """Print the text form before and/or after the named passes (``"all"`` for every pass).

    After a pass, the IR is printed only when the pass changed something.
    """

    def __init__(self, before: Iterable[str] = (), after: Iterable[str] = (), stream: TextIO | None = None):
        self.before = _known_pass_names(before, "print-ir-before")
        self.after = _known_pass_names(after, "print-ir-after")
        self.stream = stream

    @staticmethod
    def _wants(names: set[str], p: Pass) -> bool:
        return "all" in names or p.name in names or any(a in names for a in p.aliases)

    def before_pass(self, p: Pass, module: Module, index: int) -> None:
        if self._wants(self.before, p):
            text = module.to_text()
            print(f"// ----- IR before {p.name} (#{index}) ----- //\n{text}", file=self.stream or sys.stderr)

    def after_pass(self, p: Pass, module: Module, index: int, result: PassResult) -> None:
        if result.modified and self._wants(self.after, p):
            text = module.to_text()
            print(f"// ----- IR after {p.name} (#{index}) ----- //\n{text}", file=self.stream or sys.stderr)


def _known_pass_names(names: Iterable[str], setting: str) -> set[str]:
    """``names`` as a set, each ``all`` or a registered pass (an unknown one is a ``PipelineSpecError`` that
    suggests the closest name): a typo would otherwise print nothing, silently."""
    from torch_ir.passes.registry import get_pass

    out = set(names)
    for name in sorted(out - {"all"}):
        try:
            get_pass(name)
        except PipelineSpecError as exc:
            raise PipelineSpecError(f"{setting}: {exc}") from None
    return out


class DumpIR(Instrumentation):
    """Write the IR after each pass into a folder: ``003-dedup-weights.json`` and ``003-dedup-weights.txt``.

    The input of the pipeline is written as ``000-input.json`` / ``.txt``.
    """

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)

    def _write(self, module: Module, stem: str) -> None:
        from torch_ir.serde import save
        from torch_ir.serde.files import atomic_write_text

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SerializationError(f"dump-dir {self.folder}: cannot create it: {exc.strerror or exc}") from None
        save(module, self.folder / f"{stem}.json")
        atomic_write_text(self.folder / f"{stem}.txt", module.to_text() + "\n")

    def before_pipeline(self, module: Module, manager: PassManager) -> None:
        self._write(module, "000-input")

    def after_pass(self, p: Pass, module: Module, index: int, result: PassResult) -> None:
        self._write(module, f"{index:03d}-{p.name}")


class PassManager:
    """Runs a pipeline of passes on a graph, with instrumentation.

    ``pipeline`` is anything ``resolve_pipeline`` takes (text, file, ``Pipeline``, passes, "default");
    settings given here override those of a pipeline file. ``steps`` repeats the pipeline until no pass
    reports a change, at most that many times. ``reproducer`` is a file written when a pass fails: the
    pipeline text, the input IR and the plugin modules (the pipeline's, ``plugins`` given here as ``--plugin``
    does, and those that define its passes), which ``torch-ir opt --replay`` runs again.
    """

    def __init__(
        self,
        pipeline: Any = None,
        instrumentations: Sequence[Instrumentation] = (),
        *,
        verify_each: bool | None = None,
        print_ir_before: Iterable[str] | None = None,
        print_ir_after: Iterable[str] | None = None,
        dump_dir: str | os.PathLike[str] | None = None,
        timing: bool | None = None,
        steps: int | None = None,
        reproducer: str | os.PathLike[str] | None = None,
        context: PassContext | None = None,
        stream: TextIO | None = None,
        plugins: Sequence[str] = (),
    ):
        self.pipeline: Pipeline = resolve_pipeline(pipeline)
        self.extra_plugins: list[str] = list(plugins)
        settings = self.pipeline.settings

        def pick(value: Any, key: str, default: Any) -> Any:
            return value if value is not None else settings.get(key, default)

        self.verify_each: bool = pick(verify_each, "verify-each", True)
        self.steps: int = max(1, int(pick(steps, "steps", 1)))
        self.reproducer = pick(reproducer, "reproducer", None)
        self.context = context or PassContext()
        self.log: list[dict[str, Any]] = []
        self.setup_seconds = 0.0
        """Seconds the last ``run`` spent importing torch before its first pass (0 once it is loaded)."""
        built: list[Instrumentation] = []
        if self.verify_each:
            built.append(VerifyEach())
        before, after = pick(print_ir_before, "print-ir-before", ()), pick(print_ir_after, "print-ir-after", ())
        if before or after:
            built.append(PrintIR(before, after, stream))
        folder = pick(dump_dir, "dump-dir", None)
        if folder:
            built.append(DumpIR(folder))
        if pick(timing, "timing", False):
            built.append(Timing(stream))
        self.instrumentations: list[Instrumentation] = [*built, *instrumentations]

    @property
    def plugins(self) -> list[str]:
        """The plugin modules a replay needs: the pipeline's, those given here (``--plugin``), and the modules
        that define the pipeline's passes outside torch-ir (``__main__`` excepted: it cannot be imported)."""
        out: list[str] = []
        defining = [type(p).__module__ for p in self.passes]
        for name in [*self.pipeline.plugins, *self.extra_plugins, *defining]:
            if name not in out and not name.startswith("torch_ir.") and name != "__main__":
                out.append(name)
        return out

    @property
    def passes(self) -> list[Pass]:
        """The configured passes, in order."""
        return self.pipeline.passes

    def __str__(self) -> str:
        return str(self.pipeline)

    def run(self, target: Module | Graph, context: PassContext | None = None) -> Any:
        """Run the pipeline on a ``Module`` (in place; returns it) or a ``Graph`` (with its regions and init
        graph; returns the final graph)."""
        self.setup_seconds = 0.0
        if any(p.uses_torch for p in self.passes):  # torch's import is paid here, not by the first pass
            from torch_ir.ir.run_record import warm_up_torch

            self.setup_seconds = warm_up_torch()
        gc_enabled = gc.isenabled()
        gc.disable()  # passes make little cyclic garbage, but collections over a traced model's heap cost seconds
        try:
            return self._run(target, context)
        finally:
            if gc_enabled:
                gc.enable()

    def _run(self, target: Module | Graph, context: PassContext | None) -> Any:
        module = target if isinstance(target, Module) else Module(target)
        ctx = context or self.context
        self.log = []
        snapshot = self._snapshot(module) if self.reproducer else None
        for inst in self.instrumentations:
            inst.before_pipeline(module, self)
        index = 0
        done: list[str] = []
        for _step in range(self.steps):
            changed = False
            for p in self.passes:
                index += 1
                changed = self._run_one(p, module, index, ctx, done, snapshot) or changed
                done.append(p.name)
            if not changed:
                break
        for inst in self.instrumentations:
            inst.after_pipeline(module, self)
        module.pass_log.extend(self.log)
        return module if isinstance(target, Module) else module.graph

    def _run_one(self, p: Pass, module: Module, index: int, ctx: PassContext, done: list[str], snapshot: Any) -> bool:
        nodes_before, weights_before = _node_count(module), len(module.table.weights)
        ctx.passes_run = list(done)
        stage = "run"
        try:
            for inst in self.instrumentations:
                inst.before_pass(p, module, index)
            start = time.perf_counter()
            modified = run_pass(p, module, ctx)
            seconds = time.perf_counter() - start
            stage = "verify"
            result = PassResult(module, modified)
            for inst in self.instrumentations:
                inst.after_pass(p, module, index, result)
        except Exception as exc:
            error = self._failure(p, exc, done, stage, index)
            for inst in self.instrumentations:
                try:
                    inst.after_failure(p, module, index, error)
                except Exception:  # an instrumentation must not hide the pass failure
                    pass
            if snapshot is not None:
                error.reproducer = str(self.reproducer)
                write_reproducer(self.reproducer, str(self.pipeline), snapshot, self.plugins, p.name)
                error.args = (f"{error.args[0]}\nreproducer written to {self.reproducer}",)
            raise error from exc
        self.log.append(
            {
                "pass": p.name,
                "seconds": seconds,
                "modified": bool(modified),
                "nodes_before": nodes_before,
                "nodes_after": _node_count(module),
                "weights_before": weights_before,
                "weights_after": len(module.table.weights),
            }
        )
        return bool(modified)

    @staticmethod
    def _failure(p: Pass, exc: Exception, done: list[str], stage: str, index: int) -> PassError:
        before = ", ".join(done) if done else "none"
        if stage == "verify" or isinstance(exc, VerificationError):
            what = f"pass {p.name!r} (#{index}) left an invalid graph: {exc}"
        elif isinstance(exc, TorchIRError):
            what = f"pass {p.name!r} (#{index}) failed: {exc}"
        else:
            what = f"pass {p.name!r} (#{index}) failed: {type(exc).__name__}: {exc}"
        error = PassError(f"{what}\npasses before it: {before}")
        error.pass_name = p.name
        error.passes_before = tuple(done)
        error.reproducer = None  # type: ignore[attr-defined]
        return error

    @staticmethod
    def _snapshot(module: Module) -> dict[str, Any]:
        from torch_ir.serde import to_dict

        return to_dict(module)


def _node_count(module: Module) -> int:
    """The nodes of every function (the figure the pass log records; regions and the init graph aside)."""
    return sum(len(f.graph) for f in module.functions.values())


def write_reproducer(
    path: str | os.PathLike[str], pipeline: str, ir_doc: dict[str, Any], plugins: Sequence[str] = (), failed: str = ""
) -> None:
    """Write a reproducer: the pipeline text, plugins and the input IR, as one JSON file."""
    from torch_ir.serde.files import atomic_write_text

    doc = {
        "format": REPRODUCER_FORMAT,
        "pipeline": pipeline,
        "plugins": list(plugins),
        "failed_pass": failed,
        "ir": ir_doc,
    }
    atomic_write_text(path, json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n")


def format_pass_log(log: Sequence[dict[str, Any]]) -> str:
    """The pass log as a fixed-width table, with a total line."""
    header = f"{'#':>3}  {'pass':<24} {'ms':>9}  {'changed':<7} {'nodes':>13}  {'weights':>13}"
    lines = [header, "-" * len(header)]
    total = 0.0
    for i, row in enumerate(log, 1):
        total += row["seconds"]
        nodes = f"{row['nodes_before']}->{row['nodes_after']}"
        weights = f"{row['weights_before']}->{row['weights_after']}"
        lines.append(
            f"{i:>3}  {row['pass']:<24} {row['seconds'] * 1e3:>9.2f}  {'yes' if row['modified'] else 'no':<7} "
            f"{nodes:>13}  {weights:>13}"
        )
    lines.append("-" * len(header))
    lines.append(f"{'':>3}  {'total':<24} {total * 1e3:>9.2f}")
    return "\n".join(lines)


def run_pipeline(ir: IR, pipeline: Any, context: PassContext | None = None) -> IR:
    """Run ``pipeline`` on the module ``ir`` in place and record ``ir.pass_log``.

    ``pipeline`` is text, a file path (.toml/.yaml/.yml/.json), a ``PassManager``, a ``Pipeline``,
    ``"default"``, ``"none"`` or None.
    """
    if pipeline is None or (isinstance(pipeline, str) and pipeline.strip() in ("", "none")):
        return ir
    manager = pipeline if isinstance(pipeline, PassManager) else PassManager(pipeline)
    return manager.run(ir, context)


__all__ = [
    "DumpIR",
    "Instrumentation",
    "PassManager",
    "PrintIR",
    "Timing",
    "VerifyEach",
    "format_pass_log",
    "run_pipeline",
    "write_reproducer",
]
