"""``torch-ir opt``: run passes on a saved IR, without the model (like mlir-opt).

The input is JSON or the text form (told apart by content); so is the output: ``--emit``, else the suffix
of ``-o`` (``.tir``/``.txt``: text), else JSON into a file and the text form on stdout without ``-o``.

For testing passes as mlir-opt does: ``--split-input-file`` runs each part of the input cut at ``// -----``
lines on its own, ``--verify-diagnostics`` checks failures against ``// expected-error {{...}}`` comments,
and ``-v`` adds the IR around the node a failing pass was on to the traceback. Every failure, of the whole
run or of one part, is reported by ``torch_ir.cli.report_failure``, the one exit path of the CLI.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from torch_ir.cli import UsageError, report_failure
from torch_ir.cli.options import add_verbose, pipeline_text
from torch_ir.cli.streams import EMIT_FORMATS, STDIO, check_output, document, emit_format, is_json, read_text
from torch_ir.errors import PassError, SerializationError, TorchIRError

if TYPE_CHECKING:
    from torch_ir.ir.module import Module


def register(subparsers: Any) -> None:
    """Add the ``opt`` subcommand."""
    parser = subparsers.add_parser(
        "opt",
        help="run a pass pipeline on a saved IR (JSON or text form)",
        description="Run a pass pipeline on a saved IR, like mlir-opt. The input is an IR in JSON or in the text "
        "form (read by its content), or a reproducer file written by --reproducer: it records the pipeline and "
        "plugins of the run that failed, and replaying it without -p prints the command to type (a file never "
        "chooses passes, imports code or writes files).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  torch-ir opt gpt.json -p canonicalize,cse,dce -o gpt.opt.json --timing\n"
            "  torch-ir opt gpt.json -p dce | head -5\n"
            "  torch-ir opt gpt.json -p none -o gpt.tir\n"
            "  torch-ir opt gpt.tir -p cse -o gpt.cse.json\n"
            "  torch-ir extract zoo:gpt -o - | torch-ir opt - -p canonicalize -o gpt.opt.json\n"
            "  torch-ir opt gpt.tir --split-input-file -p cse,dce\n"
            "\n"
            "'-' reads the IR from stdin (input) or writes it to stdout (-o, JSON unless --emit text); without "
            "-o the text form is printed. -o NAME.tir (or .txt) writes the text form, with the metadata that "
            "reading it back needs."
        ),
    )
    parser.add_argument("input", nargs="?", help="IR file, JSON or text form (or a reproducer file); '-' reads stdin")
    parser.add_argument(
        "-p",
        "--pipeline",
        default=None,
        type=pipeline_text,
        help="pipeline text (canonicalize,cse), a .toml/.yaml/.json file, 'default' or 'none'",
    )
    parser.add_argument(
        "-o",
        "--output",
        help="where to write the resulting IR ('-' for stdout); default: stdout as text. A folder is an error",
    )
    parser.add_argument(
        "--emit",
        choices=EMIT_FORMATS,
        help="the output's format: json, or text (the text form with metadata); default: by the -o suffix",
    )
    parser.add_argument(
        "--record-run",
        action="store_true",
        help="with a JSON output: also record each pass's time (the file then differs from run to run)",
    )
    parser.add_argument(
        "--print-ir-after",
        action="append",
        default=[],
        metavar="PASS",
        help="print the IR after PASS (or 'all') when it changed something; repeatable",
    )
    parser.add_argument(
        "--print-ir-before",
        action="append",
        default=[],
        metavar="PASS",
        help="print the IR before PASS (or 'all'); repeatable",
    )
    parser.add_argument("--dump-dir", help="write the IR after each pass into this folder (JSON + text)")
    parser.add_argument("--timing", action="store_true", help="print time and node/weight counts per pass")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE so the passes it registers can be used; repeatable",
    )
    parser.add_argument("--no-verify-each", action="store_true", help="do not verify the IR after each pass")
    parser.add_argument(
        "--steps", type=int, default=None, help="repeat the pipeline until nothing changes, at most N times"
    )
    parser.add_argument("--reproducer", metavar="FILE", help="on failure, write a reproducer (pipeline + input IR)")
    parser.add_argument(
        "--replay",
        metavar="FILE",
        help="run -p PIPELINE on the IR stored in a reproducer file; without -p, print the recorded command",
    )
    parser.add_argument(
        "--split-input-file",
        action="store_true",
        help="cut the input at '// -----' lines and run each part on its own (as mlir-opt); the output "
        "is the text form of each part, separated the same way",
    )
    parser.add_argument(
        "--verify-diagnostics",
        action="store_true",
        help="check the errors against the input's '// expected-error {{text}}' comments (@+N, @-N, @* for "
        "the line) instead of reporting them; exit 0 when they agree",
    )
    add_verbose(parser, also="; when a pass fails, also the IR around the node it failed on")
    parser.set_defaults(func=run)


def check_usage(args: argparse.Namespace) -> None:
    """Refuse flags that mean nothing together, before any work."""
    if args.replay and args.input:
        raise UsageError(f"give either an IR file ({args.input}) or --replay {args.replay}, not both")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps {args.steps}: expected a count of at least 1")
    if args.dump_dir:
        folder = Path(args.dump_dir)
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--dump-dir {args.dump_dir}: exists and is not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--dump-dir {args.dump_dir}: cannot create it: {exc.strerror or exc}") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"--dump-dir {args.dump_dir}: the folder is not writable")
    if args.reproducer and args.reproducer == STDIO:
        raise UsageError("--reproducer needs a file name, not '-'")
    if args.record_run and _output_format(args) != "json":
        raise UsageError("--record-run adds timings to a JSON output; the text form has no place for them")
    if (args.split_input_file or args.verify_diagnostics) and args.replay:
        raise UsageError("--replay runs one reproducer: it takes no --split-input-file or --verify-diagnostics")
    json_out = args.emit == "json" or (args.output or "").lower().endswith(".json")
    if (args.split_input_file or args.verify_diagnostics) and json_out:
        raise UsageError("--split-input-file and --verify-diagnostics print the text form of each part, not JSON")
    check_output(args.output)
    check_output(args.reproducer)
    if args.output and args.output != STDIO and args.reproducer:
        from torch_ir.serde.files import check_distinct_outputs

        check_distinct_outputs([args.output, args.reproducer])


def _output_format(args: argparse.Namespace) -> str:
    """json or text: ``--emit``, else the suffix of ``-o``; JSON to a file or ``-``, text without ``-o``."""
    return emit_format(args.output, args.emit, default="json" if args.output else "text")


def run(args: argparse.Namespace) -> int:
    """Load, run the pipeline, write the result (for each part of a ``--split-input-file`` input)."""
    from torch_ir.cli.streams import write_ir, write_text
    from torch_ir.passes.registry import load_plugins

    check_usage(args)
    load_plugins(args.plugin)
    source = args.replay or args.input
    if not source:
        raise UsageError("give an IR file (torch-ir opt IN.json -p PIPELINE; '-' for stdin) or --replay FILE")
    text, name = read_text(source)
    if args.split_input_file or args.verify_diagnostics:
        return _run_parts(args, text, name)
    ir = _run_part(args, text, name, name)
    form = _output_format(args)
    if args.output:
        write_ir(ir, args.output, form, run_record=args.record_run)
    elif args.emit:
        write_ir(ir, STDIO, form)
    else:
        write_text(STDIO, ir.to_text() + "\n")
    return 0


def _run_parts(args: argparse.Namespace, text: str, name: str) -> int:
    """Run each part of the input on its own; print the text of each, separated by ``// -----``. A failing
    part is reported and the others still run; with ``--verify-diagnostics`` a failure is expected where
    the part's ``expected-error`` comments say, and only a difference from them is reported."""
    from torch_ir.cli.diagnostics import SPLIT_MARKER, Part, check_errors, error_line, expected_errors, split_input
    from torch_ir.cli.streams import write_text
    from torch_ir.passes.failure import failing_node

    parts = split_input(text) if args.split_input_file else [Part(text, 1, 1)]
    outputs: list[str] = []
    failed = 0
    for part in parts:
        label = f"{name} (part {part.index}, line {part.line})" if args.split_input_file else name
        try:
            expected = expected_errors(part) if args.verify_diagnostics else []
        except ValueError as exc:
            raise UsageError(f"{name}: {exc}") from None
        error: TorchIRError | None = None
        try:
            outputs.append(_run_part(args, part.text, label, name).to_text() + "\n")
        except TorchIRError as exc:
            error = exc
            outputs.append("")
        if args.verify_diagnostics:
            node = failing_node(error) if error is not None else None
            line = error_line(error, part, node.name if node else None) if error is not None else None
            problems = check_errors(expected, error, line)
            for problem in problems:
                report_failure(args, TorchIRError(f"{name}:{problem}"))
            failed += bool(problems)
        elif error is not None:
            report_failure(args, error)
            failed += 1
    write_text(args.output or STDIO, f"{SPLIT_MARKER}\n".join(outputs))
    if failed and args.verify_diagnostics:
        raise TorchIRError(
            f"{name}: {failed} of {len(parts)} part(s) did not fail as their expected-error comments say"
        )
    if failed:
        raise TorchIRError(f"{name}: {failed} of {len(parts)} part(s) failed")
    return 0


def _run_part(args: argparse.Namespace, text: str, label: str, name: str) -> Module:
    """Read one IR (JSON, the text form, or a reproducer) and run the pipeline on it; errors name ``label``.
    A failing pass's error carries the node it failed on and the IR around it (shown with ``-v``)."""
    from torch_ir.cli.streams import parse_text_form
    from torch_ir.passes.failure import failing_node, failure_context
    from torch_ir.passes.manager import REPRODUCER_FORMAT, PassManager
    from torch_ir.serde import from_dict

    pipeline = args.pipeline
    doc: Any = None
    if is_json(text):
        doc = document(text, label)
        if isinstance(doc, dict) and doc.get("format") == REPRODUCER_FORMAT:
            recorded = _recorded(name, doc)
            if pipeline is None:
                raise UsageError(_replay_command(args.replay or args.input, recorded))
            ir = from_dict(doc.get("ir"), label)
            missing = [plugin for plugin in recorded.plugins if plugin not in args.plugin]
            note = f"; it was written with plugin(s) {', '.join(missing)}, not given here" if missing else ""
            print(
                f"replaying {name} with pipeline {pipeline!r} (failed in {recorded.failed or '?'}){note}",
                file=sys.stderr,
            )
        elif args.replay:
            raise SerializationError(f"{name}: not a torch-ir reproducer file (format {_format_of(doc)!r})")
        else:
            ir = from_dict(doc, label)
    elif args.replay:
        raise SerializationError(f"{name}: not a torch-ir reproducer file (a reproducer is JSON)")
    else:
        ir = parse_text_form(text, label)
    manager = PassManager(
        pipeline if pipeline is not None else "default",
        verify_each=False if args.no_verify_each else None,
        print_ir_before=args.print_ir_before or None,
        print_ir_after=args.print_ir_after or None,
        dump_dir=args.dump_dir,
        timing=True if args.timing else None,
        steps=args.steps,
        reproducer=args.reproducer,
        plugins=list(args.plugin),
    )
    try:
        manager.run(ir)
    except PassError as exc:
        error = PassError(f"{label}: {exc}") if label != name else exc
        error.node = failing_node(exc, ir)
        error.ir_context = failure_context(error.node)
        if error is exc:
            raise
        raise error from exc
    return ir


def _format_of(doc: Any) -> Any:
    return doc.get("format") if isinstance(doc, dict) else type(doc).__name__


class _Recorded(NamedTuple):
    """What a reproducer file says about the run that wrote it (only ever printed, never acted on)."""

    pipeline: str
    plugins: list[str]
    failed: str


def _recorded(source: str, doc: dict[str, Any]) -> _Recorded:
    pipeline, plugins, failed = doc.get("pipeline", ""), doc.get("plugins") or [], doc.get("failed_pass") or ""
    if not isinstance(pipeline, str) or len(pipeline) > 100_000:
        raise SerializationError(f"{source}: $.pipeline must be the pipeline text")
    if not isinstance(plugins, list) or not all(isinstance(n, str) and len(n) < 1000 for n in plugins):
        raise SerializationError(f"{source}: $.plugins must be a list of module names")
    return _Recorded(pipeline, plugins, str(failed)[:200])


def _replay_command(source: str, recorded: _Recorded) -> str:
    """The message that tells the user what to type to replay ``source``: a reproducer file records the
    pipeline and plugins of the run that wrote it, but a file never chooses passes, imports code or sets
    instrumentation (dump folders, reproducer paths) by itself."""
    words = ["torch-ir", "opt", "--replay", source, "-p", recorded.pipeline or "none"]
    for plugin in recorded.plugins:
        words += ["--plugin", plugin]
    command = " ".join(shlex.quote(w) for w in words)
    return (
        f"{source} records a run of pipeline {recorded.pipeline!r}"
        + (f" with plugin(s) {', '.join(recorded.plugins)}" if recorded.plugins else "")
        + f" that failed in {recorded.failed or '?'}. A reproducer file never chooses passes, imports code or "
        f"writes files by itself; to replay it, check the pipeline and plugins, then type:\n  {command}"
    )


__all__ = ["register", "run"]
