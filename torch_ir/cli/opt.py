"""``torch-ir opt``: run passes on a saved IR, without the model (like mlir-opt)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch_ir.cli import UsageError
from torch_ir.cli.streams import STDIO, is_json, parse_text_form, read_text, write_ir, write_text
from torch_ir.errors import PassError, PipelineSpecError, SerializationError, TorchIRError

if TYPE_CHECKING:
    from torch_ir.ir.graph import Node
    from torch_ir.ir.module import Module


def register(subparsers: Any) -> None:
    """Add the ``opt`` subcommand."""
    parser = subparsers.add_parser(
        "opt",
        help="run a pass pipeline on a saved IR (JSON or the text form)",
        description="Run a pass pipeline on a saved IR, like mlir-opt. The input may also be a reproducer "
        "file written by --reproducer, which replays the pipeline that failed.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  torch-ir opt gpt.json -p canonicalize,cse,dce -o gpt.opt.json --timing\n"
            "  torch-ir opt gpt.json -p dce | head -5\n"
            "  torch-ir extract zoo:gpt -o - | torch-ir opt - -p canonicalize -o gpt.opt.json\n"
            "  torch-ir opt gpt.json -p none | torch-ir opt - --split-input-file -p cse,dce -v\n"
            "\n"
            "The input is JSON or the text form, told apart by its content. '-' reads the IR from stdin (input) "
            "or writes its JSON to stdout (-o); without -o the text form is printed. With --split-input-file "
            "the output is always the text form."
        ),
    )
    parser.add_argument(
        "input", nargs="?", help="IR file, JSON or the text form (or a reproducer file); '-' reads stdin"
    )
    parser.add_argument(
        "-p",
        "--pipeline",
        default=None,
        help="pipeline text (canonicalize,cse), a .toml/.yaml/.json file, 'default' or 'none'",
    )
    parser.add_argument(
        "-o", "--output", help="where to write the resulting IR (JSON; '-' for stdout); default: stdout as text"
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
    parser.add_argument("--replay", metavar="FILE", help="run the pipeline and IR stored in a reproducer file")
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
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="when a pass fails, print its traceback and the IR around the node it failed on",
    )
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
    if (args.split_input_file or args.verify_diagnostics) and args.replay:
        raise UsageError("--replay runs one reproducer: it takes no --split-input-file or --verify-diagnostics")


def run(args: argparse.Namespace) -> int:
    """Load, run the pipeline, write the result (for each part of a ``--split-input-file`` input)."""
    from torch_ir.passes.registry import load_plugins

    check_usage(args)
    load_plugins(args.plugin)
    source = args.replay or args.input
    if not source:
        raise UsageError("give an IR file (torch-ir opt IN.json -p PIPELINE; '-' for stdin) or --replay FILE")
    text, name = read_text(source)
    if not args.split_input_file and not args.verify_diagnostics:
        ir = _run_part(args, text, name, name)
        if args.output:
            write_ir(ir, args.output)
        else:
            write_text(STDIO, ir.to_text() + "\n")
        return 0
    return _run_parts(args, text, name)


def _run_parts(args: argparse.Namespace, text: str, name: str) -> int:
    """Run each part of the input on its own; print the text of each, separated by ``// -----``. A failing
    part is reported and the others still run; with ``--verify-diagnostics`` a failure is expected where
    the part's ``expected-error`` comments say, and only a difference from them is reported."""
    from torch_ir.cli.diagnostics import SPLIT_MARKER, Part, check_errors, error_line, expected_errors, split_input
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
                print(f"torch-ir opt: error: {name}:{problem}", file=sys.stderr)
            failed += bool(problems)
        elif error is not None:
            print(f"torch-ir opt: error: {error}", file=sys.stderr)
            failed += 1
    body = f"{SPLIT_MARKER}\n".join(outputs)
    write_text(args.output or STDIO, body)
    if failed and args.verify_diagnostics:
        raise TorchIRError(
            f"{name}: {failed} of {len(parts)} part(s) did not fail as their expected-error comments say"
        )
    if failed:
        raise TorchIRError(f"{name}: {failed} of {len(parts)} part(s) failed")
    return 0


def _run_part(args: argparse.Namespace, text: str, label: str, name: str) -> Module:
    """Read one IR (JSON, the text form, or a reproducer) and run the pipeline on it; errors name ``label``."""
    from torch_ir.passes.manager import REPRODUCER_FORMAT, PassManager
    from torch_ir.serde import from_dict, loads_document

    pipeline = args.pipeline
    doc: Any = None
    if is_json(text):
        doc = loads_document(text, label)
        if isinstance(doc, dict) and doc.get("format") == REPRODUCER_FORMAT:
            _check_reproducer_plugins(label, doc.get("plugins"), args.plugin)
            ir = from_dict(doc.get("ir"), label)
            pipeline = pipeline if pipeline is not None else doc.get("pipeline", "")
            failed = doc.get("failed_pass") or "?"
            print(f"replaying {name}: pipeline {pipeline!r} (failed in {failed})", file=sys.stderr)
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
        plugins=[*args.plugin, *((doc.get("plugins") or []) if isinstance(doc, dict) else [])],
    )
    try:
        manager.run(ir)
    except PassError as exc:
        from torch_ir.passes.failure import failing_node

        node = failing_node(exc, ir)
        if args.verbose:
            _explain_failure(exc, node)
        error = PassError(f"{label}: {exc}") if label != name else exc
        error.node = node
        if error is exc:
            raise
        raise error from exc
    return ir


def _explain_failure(error: PassError, node: Node | None) -> None:
    """``-v``: the traceback of what failed inside the pass, and the IR around the node it failed on."""
    from torch_ir.passes.failure import ir_around, where

    cause = error.__cause__ or error
    print("--- traceback of the failing pass ---", file=sys.stderr)
    traceback.print_exception(cause, file=sys.stderr)
    if node is None:
        print("--- no node of the IR is named by the failure ---", file=sys.stderr)
        return
    print(f"--- IR around {where(node)}, as the pass left it ---", file=sys.stderr)
    print(ir_around(node), file=sys.stderr)
    print("--- end ---", file=sys.stderr)


def _format_of(doc: Any) -> Any:
    return doc.get("format") if isinstance(doc, dict) else type(doc).__name__


def _check_reproducer_plugins(source: str, named: Any, trusted: list[str]) -> None:
    """A reproducer file lists the plugins of the run that failed; a file never imports code on its own,
    so each must also be given with ``--plugin`` (which has imported it already)."""
    if named is None:
        return
    if not isinstance(named, list) or not all(isinstance(n, str) for n in named):
        raise SerializationError(f"{source}: $.plugins must be a list of module names")
    untrusted = [name for name in named if name not in trusted]
    if untrusted:
        flags = " ".join(f"--plugin {name}" for name in untrusted)
        raise PipelineSpecError(
            f"{source} was written with plugin module(s) {', '.join(untrusted)}; an IR or reproducer file never "
            f"imports code by itself. If you trust them, replay with {flags}"
        )
