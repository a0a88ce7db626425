"""The package layering, read from the source with ``ast``: which torch_ir packages each package imports.

Every import counts, at module level or inside a function (a lazy import is still a dependency), and so
do relative imports. The op registry (``torch_ir/ops``) is at the bottom: it imports only the standard
library, ``torch_ir.errors`` and torch; ``ir/`` never imports the passes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "torch_ir"


def imported_modules(source: str, package: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import in ``source``, a module of ``package`` (``("torch_ir", "ops")``);
    relative imports are resolved against it."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # ``from torch_ir import passes`` imports the package passes
                yield node.lineno, f"{module}.{alias.name}"


def torch_ir_imports(package: str) -> list[tuple[str, int, str]]:
    """``(file, line, module)`` for every torch_ir module imported by the files of ``torch_ir/<package>``."""
    out = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).parts[:-1]
        for line, module in imported_modules(path.read_text(), parts):
            if module == "torch_ir" or module.startswith("torch_ir."):
                out.append((str(path.relative_to(PACKAGE.parent)), line, module))
    return out


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_ops_imports_only_errors_and_itself() -> None:
    allowed = {"ops", "errors"}
    bad = [f"{f}:{line} imports {m}" for f, line, m in torch_ir_imports("ops") if _package_of(m) not in allowed]
    assert not bad, "torch_ir/ops must import only the standard library, torch_ir.errors and torch:\n" + "\n".join(bad)


def test_ir_never_imports_the_passes() -> None:
    bad = [f"{f}:{line} imports {m}" for f, line, m in torch_ir_imports("ir") if _package_of(m) == "passes"]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import torch_ir.passes.cse\n", "torch_ir.passes.cse"),
        ("def f():\n    from torch_ir.analysis import statistics\n", "torch_ir.analysis.statistics"),
        ("from ..passes import cse\n", "torch_ir.passes.cse"),
        ("from . import cost\n", "torch_ir.ops.cost"),
        ("from .cost import FREE\n", "torch_ir.ops.cost"),
    ],
)
def test_the_walker_sees_every_kind_of_import(source: str, expected: str) -> None:
    assert expected in [m for _, m in imported_modules(source, ("torch_ir", "ops"))]
