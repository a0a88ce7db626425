"""``torch-ir view IR``: open a saved IR (JSON or the text form) in Model Explorer, with cost overlays and a
verify report.

Starts Model Explorer on this machine (127.0.0.1) with the torch-ir adapter, and prints the URL that opens
the IR: one graph per function (the entries, such as a program's prefill and decode, then each private
function that calls run, linked from every call), layers that follow module paths, a graph per region.
Node data: FLOPs, bytes moved, output bytes and live activation bytes per node, and with ``--overlay`` the
per-node error of a ``torch-ir verify --json`` report, the first divergence in red.
Runs until interrupted (Ctrl+C). Needs the [viz] extra (pip install 'torch-ir[viz]').
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from torch_ir.cli import UsageError
from torch_ir.cli.options import add_verbose
from torch_ir.cli.streams import STDIO, ir_from_text, is_json, read_text, render_ir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``view`` subcommand."""
    parser = subparsers.add_parser(
        "view",
        help="browse a saved IR in Model Explorer (layers, regions, cost and verify overlays)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  torch-ir view gpt.json\n"
            "  torch-ir view gpt.json --port 8080\n"
            "  torch-ir verify gpt.json --model zoo:gpt --json > verify.json\n"
            "  torch-ir view gpt.json --overlay verify.json\n"
            "  torch-ir view llm.json --bind seq=64\n"
            "  torch-ir extract zoo:gpt -o - | torch-ir view -\n"
            "\n"
            "The URL is printed on stdout; Model Explorer's own messages go to stderr. To open it from another\n"
            "machine, forward the port (ssh -L 8080:127.0.0.1:8080 host). Without a server:\n"
            "torch-ir report IR --format model-explorer -o DIR writes files Model Explorer opens by itself."
        ),
    )
    parser.add_argument(
        "ir", help="an IR file (JSON or the text form) written by `torch-ir extract`, `opt` or IR.save; '-': stdin"
    )
    parser.add_argument("--overlay", metavar="VERIFY.json", help="a report of `torch-ir verify --json` to overlay")
    parser.add_argument("--port", type=int, default=None, help="the port to serve on (default: a free one)")
    parser.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="SYM=N",
        help="a value for a symbolic dim in the cost overlays, within its declared range (repeatable)",
    )
    add_verbose(parser)
    parser.set_defaults(func=run)


def read_overlay(path: str) -> Any:
    """The parsed JSON of a verify report file (``-`` is not allowed: stdin may hold the IR)."""
    if path == STDIO:
        raise UsageError("--overlay reads a file; '-' (stdin) is for the IR")
    text, source = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        from torch_ir.errors import SerializationError

        raise SerializationError(f"{source}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def run(args: argparse.Namespace) -> int:
    """Check the IR and the overlay, start Model Explorer, print its URL, serve until interrupted."""
    from torch_ir.backends.model_explorer.bundle import overlays_of
    from torch_ir.backends.model_explorer.server import start_view
    from torch_ir.cli.report import parse_bindings

    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: expected a port number from 1 to 65535")
    text, source = read_text(args.ir)
    ir = ir_from_text(text, source)
    symbols = {name: rng for graph in ir.entries.values() for name, rng in graph.symbols.items()}
    bindings = parse_bindings(args.bind, symbols)
    report = read_overlay(args.overlay) if args.overlay else None
    overlays = overlays_of(ir, bindings, report, args.overlay or "")
    with contextlib.ExitStack() as stack:
        path = args.ir
        if args.ir == STDIO or not is_json(text):
            # the adapter opens a JSON file: keep stdin's IR, or the text form's, in one while the server runs
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="torch-ir-view-")))
            path = str(folder / f"{'stdin' if args.ir == STDIO else Path(source).stem}.json")
            Path(path).write_text(text if is_json(text) else render_ir(ir, "json"), encoding="utf-8")
        stdout = sys.stdout
        stack.enter_context(contextlib.redirect_stdout(sys.stderr))  # Model Explorer's messages
        server = start_view(str(Path(path).resolve()), overlays, port=args.port)
        print(
            f"torch-ir view: {source} in Model Explorer at {server.address} ({len(overlays)} overlays; Ctrl+C stops)",
            file=sys.stderr,
        )
        print(server.url, file=stdout, flush=True)
        try:
            server.wait()
        except KeyboardInterrupt:
            print("torch-ir view: stopped", file=sys.stderr)
    return 0


__all__ = ["read_overlay", "register", "run"]
