"""``torch-ir report IR.json``: a Markdown report, a Mermaid diagram, or statistics of a saved IR."""

from __future__ import annotations

import argparse
import json
import sys

from torch_ir.errors import TorchIRError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="write a Markdown report (or Mermaid diagram, or statistics) of a saved IR",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  torch-ir report gpt.json -o gpt.md\n"
            "  torch-ir report gpt.json --format mermaid -o gpt.mmd --depth 2\n"
            "  torch-ir report gpt.json --stats --json --bind seq=128"
        ),
    )
    parser.add_argument("ir", help="an IR file written by `torch-ir extract` or IR.save")
    parser.add_argument("-o", "--output", help="the file to write (default: stdout)")
    parser.add_argument("--format", choices=("markdown", "mermaid"), default="markdown", help="what to write")
    parser.add_argument("--mermaid-only", action="store_true", help="same as --format mermaid")
    parser.add_argument("--stats", action="store_true", help="print statistics instead of a report")
    parser.add_argument("--json", action="store_true", help="with --stats: print them as JSON")
    parser.add_argument("--depth", type=int, default=None, help="collapse modules deeper than this in the diagram")
    parser.add_argument("--max-nodes", type=int, default=None, help="the diagram's node limit")
    parser.add_argument("--no-fold", action="store_true", help="do not fold repeated identical modules")
    parser.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="SYM=N",
        help="a value for a symbolic dim in the statistics (repeatable)",
    )
    parser.set_defaults(func=run)


def _bindings(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().lstrip("-").isdigit():
            raise TorchIRError(f"--bind {item!r}: expected SYMBOL=INTEGER, e.g. --bind seq=128")
        out[name.strip()] = int(value)
    return out


def run(args: argparse.Namespace) -> int:
    """Load the IR, render what was asked for, write it (atomically) or print it."""
    from torch_ir import load_ir
    from torch_ir.analysis.statistics import compute_statistics, format_statistics
    from torch_ir.backends.files import atomic_write_text
    from torch_ir.backends.markdown import render_markdown
    from torch_ir.backends.mermaid import DEFAULT_MAX_NODES, render_mermaid

    ir = load_ir(args.ir)
    bindings = _bindings(args.bind)
    options = {
        "depth": args.depth,
        "max_nodes": args.max_nodes or DEFAULT_MAX_NODES,
        "fold_repeats": not args.no_fold,
    }
    if args.stats:
        stats = compute_statistics(ir, bindings=bindings)
        text = json.dumps(stats.to_dict(), indent=2) + "\n" if args.json else format_statistics(stats) + "\n"
    elif args.mermaid_only or args.format == "mermaid":
        text = render_mermaid(ir, **options)
    else:
        text = render_markdown(ir, bindings=bindings, **options)
    if args.output:
        atomic_write_text(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
