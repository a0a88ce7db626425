"""``torch-ir passes``: list every registered pass with its options."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from torch_ir.cli.options import add_verbose


def register(subparsers: Any) -> None:
    """Add the ``passes`` subcommand."""
    parser = subparsers.add_parser(
        "passes",
        help="list the available passes and their options",
        description="List every registered pass: name, aliases, options, description.",
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first so its passes are listed too; repeatable",
    )
    add_verbose(parser)
    parser.set_defaults(func=run)


def describe_passes() -> str:
    """The listing ``torch-ir passes`` prints."""
    from torch_ir.passes.pipeline import DEFAULT_PIPELINE
    from torch_ir.passes.registry import all_passes

    lines: list[str] = []
    for name, cls in all_passes().items():
        aliases = f" (alias: {', '.join(cls.aliases)})" if cls.aliases else ""
        lines.append(f"{name}{aliases}")
        lines.append(f"    {cls.summary()}")
        if cls.regions:
            lines.append(f"    regions: {cls.regions}")
        for opt in cls.options():
            default = "required" if opt.default is dataclasses.MISSING else f"default {_show(opt.default)}"
            help_text = f": {opt.help}" if opt.help else ""
            lines.append(f"    {opt.name}: {opt.type_text} ({default}){help_text}")
    lines.append("")
    lines.append(f"default pipeline: {DEFAULT_PIPELINE}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    from torch_ir.passes.pipeline import format_value

    return format_value(value)


def run(args: argparse.Namespace) -> int:
    """Print the listing."""
    from torch_ir.passes.registry import load_plugins

    load_plugins(args.plugin)
    print(describe_passes())
    return 0
