"""``torch-ir report IR``: a Markdown report, a Mermaid diagram, statistics, or Model Explorer files of a saved
IR (JSON or the text form, told apart by content)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch_ir.ir.types import SymbolRange

from torch_ir.cli import UsageError
from torch_ir.cli.options import add_verbose
from torch_ir.cli.streams import STDIO, check_output, check_output_folder, read_ir, write_text


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
            "  torch-ir report gpt.json --stats --json\n"
            "  torch-ir extract zoo:gpt --input 2x32:int64 --dynamic 0=batch:1..16 -o gpt-b.json\n"
            "  torch-ir report gpt-b.json --stats --bind batch=8\n"
            "  torch-ir extract zoo:gpt -o - | torch-ir report - --format mermaid --expand-folded\n"
            "  torch-ir report gpt.json --format model-explorer -o gpt-me\n"
            "\n"
            "'-' reads the IR from stdin; --bind names a symbolic dim of the IR.\n"
            "--format model-explorer writes a folder: graphs.json and one node-data file per overlay, which\n"
            "model-explorer DIR/graphs.json --node_data_paths=DIR/flops.json,... opens without torch-ir."
        ),
    )
    parser.add_argument(
        "ir", help="an IR file (JSON or the text form) written by `torch-ir extract`, `opt` or IR.save; '-': stdin"
    )
    parser.add_argument(
        "-o", "--output", help="the file to write (default, or '-': stdout); the folder for --format model-explorer"
    )
    parser.add_argument(
        "--format",
        choices=("markdown", "mermaid", "model-explorer"),
        default=None,
        help="what to write (default: markdown)",
    )
    parser.add_argument(
        "--overlay",
        metavar="VERIFY.json",
        help="with --format model-explorer: a report of `torch-ir verify --json` to write as an error overlay",
    )
    parser.add_argument("--mermaid-only", action="store_true", help="same as --format mermaid")
    parser.add_argument("--stats", action="store_true", help="print statistics instead of a report")
    parser.add_argument("--entry", metavar="NAME", help="for a program (prefill/decode): report only this entry graph")
    parser.add_argument("--json", action="store_true", help="with --stats: print them as JSON")
    parser.add_argument("--depth", type=int, default=None, help="collapse modules deeper than this in the diagram")
    parser.add_argument("--max-nodes", type=int, default=None, help="the diagram's node limit (at least 1)")
    parser.add_argument("--no-fold", action="store_true", help="do not fold repeated identical modules")
    parser.add_argument(
        "--expand-folded",
        action="store_true",
        help="draw the inside of each folded run of layers once (its first layer stands for all)",
    )
    parser.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="SYM=N",
        help="a value for a symbolic dim in the statistics, within its declared range (repeatable)",
    )
    add_verbose(parser)
    parser.set_defaults(func=run)


def parse_bindings(items: list[str], symbols: Mapping[str, SymbolRange]) -> dict[str, int]:
    """``SYM=N`` items (``--bind``) as a dict; each names a symbol of the IR and a value inside its declared
    range."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().lstrip("-").isdigit():
            raise UsageError(f"--bind {item!r}: expected SYMBOL=INTEGER, e.g. --bind seq=128")
        name = name.strip()
        if name not in symbols:
            known = ", ".join(sorted(symbols)) or "none (every dim of this IR is static)"
            raise UsageError(f"--bind {item!r}: the IR has no symbolic dim {name!r}; its symbols: {known}")
        number = int(value)
        declared = symbols[name]
        if number < declared.min or (declared.max is not None and number > declared.max):
            raise UsageError(f"--bind {item!r}: {name} is declared as {declared}; give a value in that range")
        out[name] = number
    return out


def check_usage(args: argparse.Namespace) -> str:
    """Refuse flags that mean nothing together; return what to write: stats, mermaid, markdown or model-explorer."""
    if args.mermaid_only and args.format in ("markdown", "model-explorer"):
        raise UsageError(f"--mermaid-only contradicts --format {args.format}")
    if args.format == "model-explorer":
        return _check_model_explorer_usage(args)
    if args.overlay:
        raise UsageError("--overlay applies to --format model-explorer only")
    what = "stats" if args.stats else ("mermaid" if args.mermaid_only or args.format == "mermaid" else "markdown")
    if args.stats and (args.format or args.mermaid_only):
        raise UsageError("--stats prints statistics; it cannot be combined with --format or --mermaid-only")
    if args.json and what != "stats":
        raise UsageError("--json applies to --stats only (torch-ir report IR.json --stats --json)")
    diagram_flags = [
        flag
        for flag, given in (
            ("--depth", args.depth is not None),
            ("--max-nodes", args.max_nodes is not None),
            ("--no-fold", args.no_fold),
            ("--expand-folded", args.expand_folded),
        )
        if given
    ]
    if what == "stats" and diagram_flags:
        raise UsageError(f"{', '.join(diagram_flags)} shape the diagram, which --stats does not draw")
    if what == "mermaid" and args.bind:
        raise UsageError("--bind feeds the statistics, which a Mermaid diagram does not show")
    if args.max_nodes is not None and args.max_nodes < 1:
        raise UsageError(f"--max-nodes {args.max_nodes}: expected at least 1")
    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth {args.depth}: expected 0 or more")
    if args.no_fold and args.expand_folded:
        raise UsageError("--expand-folded draws folded runs, which --no-fold turns off")
    return what


def _check_model_explorer_usage(args: argparse.Namespace) -> str:
    if args.stats:
        raise UsageError("--stats prints statistics; it cannot be combined with --format")
    if not args.output or args.output == STDIO:
        raise UsageError("--format model-explorer writes several files: give a folder with -o DIR")
    ignored = [
        flag
        for flag, given in (
            ("--json", args.json),
            ("--depth", args.depth is not None),
            ("--max-nodes", args.max_nodes is not None),
            ("--no-fold", args.no_fold),
            ("--expand-folded", args.expand_folded),
        )
        if given
    ]
    if ignored:
        raise UsageError(f"{', '.join(ignored)} shape the Markdown report or the diagram, not Model Explorer's files")
    return "model-explorer"


def _write_model_explorer(ir: Any, args: argparse.Namespace, bindings: dict[str, int]) -> int:
    from torch_ir.backends.model_explorer.bundle import load_command, write_bundle
    from torch_ir.cli.view import read_overlay

    report = read_overlay(args.overlay) if args.overlay else None
    paths = write_bundle(ir, args.output, bindings=bindings, verify_report=report, report_source=args.overlay or "")
    print(f"wrote {args.output}: {', '.join(p.name for p in paths)}", file=sys.stderr)
    print(f"open with: {load_command(paths)}", file=sys.stderr)
    return 0


def _entry_module(ir: Any, entry: str) -> Any:
    """``entry`` of ``ir`` as a module of its own: its state, the private functions its calls run, and only the
    weights these functions read."""
    from torch_ir.ir.calls import call_graph
    from torch_ir.ir.module import IR

    graph = ir.entry(entry)
    functions = {name: f.graph for name, f in ir.functions.items()}
    calls = call_graph(functions)
    callees: list[str] = []
    pending = list(calls.get(entry, []))
    while pending:
        name = pending.pop(0)
        if name in functions and name not in callees and not ir.function(name).public:
            callees.append(name)
            pending.extend(calls.get(name, []))
    module = IR.program({entry: graph}, ir.state)
    for name in callees:
        module.add_function(name, functions[name], public=False)
    for weight in list(module.weights.values()):
        if weight.kind != "derived" and not module.table.reader(weight):
            graph.remove_weight(weight)
    return module


def run(args: argparse.Namespace) -> int:
    """Load the IR, render what was asked for, write it (atomically) or print it."""
    from torch_ir.analysis.statistics import (
        compute_statistics,
        format_program_statistics,
        format_statistics,
        program_statistics,
    )
    from torch_ir.backends.markdown import entry_ir, render_markdown
    from torch_ir.backends.mermaid import DEFAULT_MAX_NODES, render_mermaid

    what = check_usage(args)
    if what == "model-explorer":
        check_output_folder(args.output)
    else:
        check_output(args.output)
    ir = read_ir(args.ir)
    functions: tuple[str, ...] = ()
    if args.entry is not None:
        functions = tuple(ir.functions)
        # Model Explorer keeps the entry's name, the functions its calls run, and the weights their state
        ir = _entry_module(ir, args.entry) if what == "model-explorer" else entry_ir(ir, args.entry)
    elif ir.is_program and what == "mermaid":
        raise UsageError(f"a program has one diagram per entry: give --entry ({' or '.join(ir.entries)})")
    symbols = {name: rng for graph in ir.entries.values() for name, rng in graph.symbols.items()}
    bindings = parse_bindings(args.bind, symbols)
    if what == "model-explorer":
        return _write_model_explorer(ir, args, bindings)
    options = {
        "depth": args.depth,
        "max_nodes": args.max_nodes or DEFAULT_MAX_NODES,
        "fold_repeats": not args.no_fold,
        "expand_folded": args.expand_folded,
    }
    if what == "stats" and ir.is_program:
        program = program_statistics(ir, bindings=bindings)
        text = (
            json.dumps(program.to_dict(), indent=2) + "\n" if args.json else format_program_statistics(program) + "\n"
        )
    elif what == "stats":
        stats = compute_statistics(ir, bindings=bindings)
        text = json.dumps(stats.to_dict(), indent=2) + "\n" if args.json else format_statistics(stats) + "\n"
    elif what == "mermaid":
        text = render_mermaid(ir, **options)
    else:
        text = render_markdown(ir, bindings=bindings, module_functions=functions, **options)
    write_text(args.output or STDIO, text)
    if args.output and args.output != STDIO:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
