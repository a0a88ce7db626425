"""``torch-ir opt``: run passes on a saved IR, without the model (like mlir-opt)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any, NamedTuple

from torch_ir.cli import UsageError
from torch_ir.cli.streams import STDIO, read_text, write_ir, write_text
from torch_ir.errors import SerializationError


def register(subparsers: Any) -> None:
    """Add the ``opt`` subcommand."""
    parser = subparsers.add_parser(
        "opt",
        help="run a pass pipeline on a saved IR (JSON)",
        description="Run a pass pipeline on a saved IR, like mlir-opt. The input may also be a reproducer "
        "file written by --reproducer: it records the pipeline and plugins of the run that failed, and replaying "
        "it without -p prints the command to type (a file never chooses passes, imports code or writes files).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  torch-ir opt gpt.json -p canonicalize,cse,dce -o gpt.opt.json --timing\n"
            "  torch-ir opt gpt.json -p dce | head -5\n"
            "  torch-ir extract zoo:gpt -o - | torch-ir opt - -p canonicalize -o gpt.opt.json\n"
            "\n"
            "'-' reads the IR from stdin (input) or writes its JSON to stdout (-o); without -o the text form is "
            "printed."
        ),
    )
    parser.add_argument("input", nargs="?", help="IR JSON file (or a reproducer file); '-' reads stdin")
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
    parser.add_argument(
        "--replay",
        metavar="FILE",
        help="run -p PIPELINE on the IR stored in a reproducer file; without -p, print the recorded command",
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


def run(args: argparse.Namespace) -> int:
    """Load, run the pipeline, write the result."""
    from torch_ir.passes.manager import REPRODUCER_FORMAT, PassManager
    from torch_ir.passes.registry import load_plugins
    from torch_ir.serde import from_dict, loads_document

    check_usage(args)
    load_plugins(args.plugin)
    source = args.replay or args.input
    if not source:
        raise UsageError("give an IR file (torch-ir opt IN.json -p PIPELINE; '-' for stdin) or --replay FILE")
    text, name = read_text(source)
    doc = loads_document(text, name)
    pipeline = args.pipeline
    if isinstance(doc, dict) and doc.get("format") == REPRODUCER_FORMAT:
        recorded = _recorded(name, doc)
        if pipeline is None:
            raise UsageError(_replay_command(source, recorded))
        ir = from_dict(doc.get("ir"), name)
        missing = [plugin for plugin in recorded.plugins if plugin not in args.plugin]
        note = f"; it was written with plugin(s) {', '.join(missing)}, not given here" if missing else ""
        print(
            f"replaying {source} with pipeline {pipeline!r} (failed in {recorded.failed or '?'}){note}", file=sys.stderr
        )
    elif args.replay:
        raise SerializationError(f"{source}: not a torch-ir reproducer file (format {doc.get('format')!r})")
    else:
        ir = from_dict(doc, name)
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
    manager.run(ir)
    if args.output:
        write_ir(ir, args.output)
    else:
        write_text(STDIO, ir.to_text() + "\n")
    return 0


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
