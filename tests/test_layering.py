"""The layering of torch_ir, read from its imports with ``ast``: each package imports only packages below it.

Bottom to top: errors and version; ops (the op registry); ir (the object model); serde (the file format);
zoo, frontends and analysis; passes; runtime; backends, extraction and progress; cli; the package itself.
An import anywhere in a module counts, inside functions too, so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "torch_ir"

LAYERS: dict[str, int] = {
    "errors": 0,
    "version": 0,
    "ops": 1,
    "ir": 2,
    "serde": 3,
    "zoo": 3,
    "frontends": 4,
    "analysis": 4,
    "passes": 5,
    "runtime": 6,
    "backends": 7,
    "extraction": 7,
    "progress": 7,
    "viz": 7,
    "cli": 8,
    "__init__": 9,
    "__main__": 9,
}
"""Each top-level package or module of torch_ir and its layer; a module may import only lower layers."""

LEAVES = {"ops": {"errors"}, "ir": {"errors", "ops"}, "errors": set(), "version": set()}
"""What the bottom packages may import of torch_ir, exactly."""


def _unit(module: str) -> str:
    """The top-level package or module of ``torch_ir.a.b`` (``a``), ``__init__`` for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _edges() -> dict[str, set[tuple[str, str]]]:
    """unit -> {(imported unit, 'file:line')} for every import of another torch_ir unit."""
    edges: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        module = ".".join(rel.with_suffix("").parts)
        unit = (
            _unit(module.removesuffix(".__init__")) if rel.name != "__init__.py" or len(rel.parts) > 2 else "__init__"
        )
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
                if node.module == "torch_ir":
                    names = [f"torch_ir.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name == "torch_ir" or name.startswith("torch_ir."):
                    target = _unit(name)
                    if target == "__init__" or (target not in LAYERS and name.count(".") == 1):
                        target = "__init__" if target not in LAYERS else target
                    if target != unit:
                        edges[unit].add((target, f"{rel}:{node.lineno}"))
    return edges


def test_every_unit_has_a_layer() -> None:
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    units.discard("__pycache__")
    missing = sorted(u for u in units if u not in LAYERS)
    assert not missing, f"give these a layer in LAYERS: {missing}"


def test_imports_point_down_only() -> None:
    upward = [
        f"{where}: {unit} (layer {LAYERS[unit]}) imports {target} (layer {LAYERS.get(target, '?')})"
        for unit, targets in _edges().items()
        for target, where in targets
        if LAYERS.get(target, 99) >= LAYERS[unit]
    ]
    assert not upward, "imports that point up (or sideways) the layering:\n" + "\n".join(sorted(upward))


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_the_bottom_packages_import_only_what_they_may(leaf: str) -> None:
    found = {target for target, _ in _edges().get(leaf, set())}
    assert found <= LEAVES[leaf], f"{leaf} imports {sorted(found - LEAVES[leaf])}"


def test_no_import_cycle_between_packages() -> None:
    graph = {unit: {t for t, _ in targets} for unit, targets in _edges().items()}
    state: dict[str, int] = {}

    def visit(unit: str, trail: list[str]) -> None:
        state[unit] = 1
        for target in sorted(graph.get(unit, ())):
            if state.get(target) == 1:
                cycle = trail[trail.index(target) :] if target in trail else [target]
                pytest.fail(f"import cycle: {' -> '.join([*cycle, target])}")
            if target not in state:
                visit(target, [*trail, target])
        state[unit] = 2

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [unit])
