"""``python -m tests``: run the comprehensive checks on the registered test models from the command line.

Examples: ``python -m tests --output reports/``, ``python -m tests --list-models``,
``python -m tests --category attention``, ``python -m tests --transformers --model llama_tiny``.
Prints a summary table; exits 1 when any model fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.testing.runner import all_cases, format_summary, run_cases, select_cases


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the selected models, print the summary; the exit status says if all passed."""
    parser = argparse.ArgumentParser(prog="python -m tests", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", "-o", type=Path, help="write a report per model and index.md into this folder")
    parser.add_argument("--list-models", action="store_true", help="list the models and exit")
    parser.add_argument("--category", "-c", action="append", default=[], help="only this category (repeatable)")
    parser.add_argument("--model", "-m", action="append", default=[], help="only this model (repeatable)")
    parser.add_argument("-k", dest="keyword", help="only models whose 'category/name' contains this text")
    parser.add_argument(
        "--transformers",
        action="store_true",
        help="add the tiny transformers models (gpt2_tiny, llama_tiny, llama_32_layers)",
    )
    parser.add_argument("--no-verify", action="store_true", help="skip verification with real weights")
    args = parser.parse_args(argv)

    include_hf = args.transformers or any(m.startswith(("gpt2", "llama")) for m in args.model)
    try:
        cases = select_cases(all_cases(include_hf), args.model, args.category, args.keyword)
    except KeyError as exc:
        print(f"python -m tests: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.list_models:
        for case in cases:
            print(f"{case.name:<24}{case.category:<18}{case.description}")
        return 0
    if not cases:
        print("python -m tests: no model matches the selection", file=sys.stderr)
        return 2

    def progress(result) -> None:
        print(f"{'ok  ' if result.ok else 'FAIL'} {result.category}/{result.name}", flush=True)

    results = run_cases(cases, args.output, verify=not args.no_verify, progress=progress)
    print()
    print(format_summary(results))
    if args.output is not None:
        print(f"\nreports: {args.output / 'index.md'}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
