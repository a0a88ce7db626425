"""The ``torch-ir`` command line: one module per subcommand, each with ``register(subparsers)``.

A subcommand module defines ``register(subparsers: argparse._SubParsersAction) -> None`` that adds its
parser and sets ``func`` (``args -> int`` exit code) with ``parser.set_defaults(func=...)``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from torch_ir.errors import TorchIRError

COMMANDS = ("extract", "opt", "passes", "verify", "report")
"""Subcommand modules under ``torch_ir.cli``, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand that is installed."""
    from torch_ir import __version__

    parser = argparse.ArgumentParser(
        prog="torch-ir", description="Extract, optimize, verify and report compiler IR from PyTorch models."
    )
    parser.add_argument("--version", action="version", version=f"torch-ir {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module_name = f"torch_ir.cli.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; a ``TorchIRError`` prints one clear line and exits with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TorchIRError as exc:
        print(f"torch-ir {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
