"""The ``torch-ir`` command line: one module per subcommand, each with ``register(subparsers)``.

A subcommand module defines ``register(subparsers: argparse._SubParsersAction) -> None`` that adds its
parser and sets ``func`` (``args -> int`` exit code) with ``parser.set_defaults(func=...)``. Modules import
torch only inside the commands that need it, so ``torch-ir --help`` and the commands that read a saved IR
start at once.

Conventions (after mlir-opt): ``-`` is stdin for every IR input and stdout for every IR output
(``torch_ir.cli.streams``); an IR input is JSON or the text form, told apart by its content. Every failure
leaves through ``main``: exit status 0 ok, 1 only for ``verify`` finding a mismatch, 2 for bad input or
usage (a ``TorchIRError``, a ``UsageError`` for flags that mean nothing together, or any other exception,
named as unexpected), 141 when stdout was closed by its reader before the output was written, quietly.
The message is one line or a few, never a traceback; ``-v`` on every command adds the traceback, the
causes first (torch's own exception, where torch failed), and torch's captured log.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Sequence

from torch_ir.errors import TorchIRError


class UsageError(TorchIRError):
    """A flag or a combination of flags that means nothing (``report --json`` without ``--stats``).

    The CLI prints the command's usage line and the message, and exits with status 2.
    """


COMMANDS = ("extract", "opt", "passes", "verify", "report", "view")
"""Subcommand modules under ``torch_ir.cli``, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand that is installed."""
    from torch_ir.version import __version__

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
    for name, sub in subparsers.choices.items():
        sub.set_defaults(parser=sub, command=name)
    return parser


EXIT_OK = 0
"""Success (and, for ``verify``, every output matched)."""
EXIT_MISMATCH = 1
"""``torch-ir verify`` only: the IR ran, and an output differs from eager PyTorch."""
EXIT_USAGE = 2
"""Bad input or usage: a flag, a spec, a file, a model that cannot be traced. One message, no traceback."""
EXIT_PIPE = 141
"""stdout was closed by the reader (``torch-ir opt x.json | head``): stop quietly, as a SIGPIPE would."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit status (see ``EXIT_*``); every failure prints a short message."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version (0), or a usage error it printed (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure leaves here: one message, the traceback only with -v
        report_failure(args, exc)
        return EXIT_USAGE


def report_failure(args: argparse.Namespace, exc: Exception) -> None:
    """Print ``exc`` as ``torch-ir COMMAND: error: ...``; with ``-v``, first the traceback (causes first),
    torch's captured log, and the IR around the node a failing pass was on (``PassError.ir_context``).
    ``main`` reports every failure here; ``opt --split-input-file`` also reports each failing part."""
    verbose = bool(getattr(args, "verbose", False))
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
        torch_log = getattr(exc, "torch_log", "")
        if torch_log:
            print(f"--- torch log ---\n{torch_log}\n--- end of torch log ---", file=sys.stderr)
        ir_context = getattr(exc, "ir_context", "")
        if ir_context:
            print(ir_context, file=sys.stderr)
    if isinstance(exc, UsageError):
        args.parser.print_usage(sys.stderr)
    print(f"torch-ir {args.command}: error: {describe_failure(exc, verbose)}", file=sys.stderr)


def describe_failure(exc: BaseException, verbose: bool = False) -> str:
    """The message for a failure: a ``TorchIRError``'s own; an unwritable path's; any other exception named
    as unexpected, with where to see more."""
    if isinstance(exc, TorchIRError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:  # an unwritable output or folder that no layer below named
        name = f"{exc.filename}: " if exc.filename else ""
        return f"{name}{exc.strerror}"
    more = "" if verbose else "; rerun with -v for the traceback"
    return f"unexpected {type(exc).__name__}: {exc}{more}"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run() -> None:
    """The ``torch-ir`` console script: ``main()`` with its status, quiet on a closed stdout."""
    try:
        code = main()
    except BrokenPipeError:
        _silence_stdout()
        code = EXIT_PIPE
    sys.exit(code)


if __name__ == "__main__":
    run()
