"""Checking Mermaid output: a strict grammar check of the subset the backend emits, and the real parser.

``validate_mermaid(text)`` parses every line of the emitted subset (flowchart header, comments, node
definitions with each shape, edges with quoted labels, subgraph/end, classDef/class) and rejects anything
else. ``parse_with_mermaid_js`` runs the real ``mermaid`` npm package under node (with jsdom) when it is
installed: where ``$TORCH_IR_MERMAID_JS`` points, else ``.mermaid-js`` in the checkout (where ``make test``
installs it, and ``python -m tests.testing.mermaid --install`` too), else ``~/.cache/torch-ir/mermaid-js``
(older installs). ``check_mermaid`` does both.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from torch_ir.backends.mermaid import SHAPES, render_mermaid

__all__ = [
    "MermaidSyntaxError",
    "check_mermaid",
    "find_mermaid_js",
    "install_mermaid_js",
    "parse_with_mermaid_js",
    "render_mermaid",
    "validate_mermaid",
]

DEFAULT_INSTALL = Path(__file__).resolve().parents[2] / ".mermaid-js"
"""Where ``make test`` (``make mermaid-js``) installs the parser: ``.mermaid-js`` in the checkout."""
CACHE_INSTALL = Path.home() / ".cache" / "torch-ir" / "mermaid-js"
"""Where older versions installed it; still looked at."""
_SCRIPT = Path(__file__).with_name("mermaid_parse.mjs")
_KEYWORDS = {
    "end",
    "subgraph",
    "graph",
    "flowchart",
    "class",
    "classDef",
    "style",
    "click",
    "direction",
    "linkStyle",
    "default",
}
_ID = r"[A-Za-z][A-Za-z0-9_]*"
_LABEL = r'"((?:[^"#<>`]|#[A-Za-z0-9]+;|<br/>)*)"'
_DIRECTION = r"(?:TD|TB|LR|RL|BT)"
_SHAPE_RES = [re.compile(rf"({_ID}){re.escape(o[:-1])}{_LABEL}{re.escape(c[1:])}") for o, c in SHAPES.values()]
_EDGE = re.compile(rf"({_ID})\s+(?:-->|-\.->|==>|---)(?:\|{_LABEL}\|)?\s+({_ID})")
_SUBGRAPH = re.compile(rf"subgraph\s+({_ID})(?:\[{_LABEL}\])?")
_CLASSDEF = re.compile(rf"classDef\s+({_ID})\s+[\w-]+:[^,;\s]+(?:,[\w-]+:[^,;\s]+)*")
_CLASS = re.compile(rf"class\s+({_ID}(?:,{_ID})*)\s+({_ID})")


class MermaidSyntaxError(AssertionError):
    """The text is not in the Mermaid subset the backend emits; the message gives the line."""


def validate_mermaid(text: str) -> None:
    """Raise ``MermaidSyntaxError`` unless every line of ``text`` is valid in the emitted subset."""
    lines = text.splitlines()
    header_seen = False
    depth = 0
    nodes: set[str] = set()
    subgraphs: set[str] = set()
    class_defs: set[str] = set()
    references: list[tuple[int, str]] = []
    class_uses: list[tuple[int, str]] = []

    def fail(lineno: int, why: str) -> None:
        raise MermaidSyntaxError(f"line {lineno}: {why}: {lines[lineno - 1]!r}")

    def define(lineno: int, ident: str, into: set[str]) -> None:
        if ident in _KEYWORDS:
            fail(lineno, f"{ident!r} is a reserved word")
        if ident in nodes or ident in subgraphs:
            fail(lineno, f"{ident!r} is defined twice")
        into.add(ident)

    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("%%"):
            if "{" in line and line.startswith("%%{"):
                fail(lineno, "directives are not emitted by the backend")
            continue
        if not header_seen:
            if not re.fullmatch(rf"flowchart\s+{_DIRECTION}", line):
                fail(lineno, "expected the header 'flowchart TD|LR|...'")
            header_seen = True
            continue
        if line == "end":
            depth -= 1
            if depth < 0:
                fail(lineno, "'end' without a subgraph")
            continue
        if m := _SUBGRAPH.fullmatch(line):
            define(lineno, m.group(1), subgraphs)
            depth += 1
            continue
        if re.fullmatch(rf"direction\s+{_DIRECTION}", line):
            if depth == 0:
                fail(lineno, "'direction' outside a subgraph")
            continue
        if m := _CLASSDEF.fullmatch(line):
            class_defs.add(m.group(1))
            continue
        if m := _CLASS.fullmatch(line):
            references.extend((lineno, i) for i in m.group(1).split(","))
            class_uses.append((lineno, m.group(2)))
            continue
        if m := _EDGE.fullmatch(line):
            references.extend([(lineno, m.group(1)), (lineno, m.group(3))])
            continue
        for shape in _SHAPE_RES:
            if m := shape.fullmatch(line):
                define(lineno, m.group(1), nodes)
                break
        else:
            fail(lineno, "not a header, comment, node, edge, subgraph, end, classDef or class line")
    if not header_seen:
        raise MermaidSyntaxError("no 'flowchart' header")
    if depth != 0:
        raise MermaidSyntaxError(f"{depth} subgraph(s) not closed with 'end'")
    for lineno, ident in references:
        if ident not in nodes:
            fail(lineno, f"{ident!r} is used but never defined")
    for lineno, name in class_uses:
        if name not in class_defs:
            fail(lineno, f"class {name!r} has no classDef")


def find_mermaid_js() -> Path | None:
    """The folder with node_modules/mermaid and jsdom, if node and the packages are installed."""
    if shutil.which("node") is None:
        return None
    chosen = os.environ.get("TORCH_IR_MERMAID_JS")
    for folder in [Path(chosen)] if chosen else [DEFAULT_INSTALL, CACHE_INSTALL]:
        if (folder / "node_modules" / "mermaid").is_dir() and (folder / "node_modules" / "jsdom").is_dir():
            return folder
    return None


def install_mermaid_js(folder: Path = DEFAULT_INSTALL) -> Path:
    """``npm install mermaid@11 jsdom`` into ``folder`` (a minute; needs npm and the registry)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "package.json").exists():
        (folder / "package.json").write_text('{"name": "torch-ir-mermaid-check", "private": true}\n')
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "mermaid@11", "jsdom"], cwd=folder, check=True)
    return folder


def parse_with_mermaid_js(texts: dict[str, str], folder: Path | None = None) -> dict[str, str | None]:
    """Parse each text with the real Mermaid parser: name -> None when it parses, else the error."""
    folder = folder or find_mermaid_js()
    if folder is None:
        raise RuntimeError("the mermaid npm package is not installed; run python -m tests.testing.mermaid --install")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for i, (name, text) in enumerate(texts.items()):
            path = Path(tmp) / f"{i}.mmd"
            path.write_text(text, encoding="utf-8")
            paths[str(path)] = name
        proc = subprocess.run(["node", str(_SCRIPT), str(folder), *paths], capture_output=True, text=True, timeout=300)
    results: dict[str, str | None] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            results[paths[entry["file"]]] = None if entry["ok"] else entry["error"]
    if len(results) != len(texts):
        raise RuntimeError(f"the mermaid parser failed to run: {proc.stderr[-2000:]}")
    return results


def check_mermaid(text: str, *, real_parser: bool = True) -> None:
    """Strict grammar check, then the real parser when it is installed; raise on the first problem."""
    validate_mermaid(text)
    if real_parser and find_mermaid_js() is not None:
        error = parse_with_mermaid_js({"diagram": text})["diagram"]
        if error:
            raise MermaidSyntaxError(f"mermaid rejects the diagram: {error}")


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.testing.mermaid [--install] FILE...``: check .mmd files."""
    parser = argparse.ArgumentParser(prog="python -m tests.testing.mermaid", description=main.__doc__)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--install", action="store_true", help=f"install mermaid + jsdom into {DEFAULT_INSTALL}")
    args = parser.parse_args(argv)
    if args.install:
        print(f"installed into {install_mermaid_js()}")
    folder = find_mermaid_js()
    how = f"grammar + mermaid from {folder}" if folder else "grammar only: no parser installed (make mermaid-js)"
    bad = 0
    for path in args.files:
        try:
            check_mermaid(path.read_text(encoding="utf-8"))
            print(f"ok    {path} ({how})")
        except MermaidSyntaxError as exc:
            bad += 1
            print(f"FAIL  {path}: {exc}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
