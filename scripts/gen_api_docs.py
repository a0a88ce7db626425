"""Write docs/api/: an index and one page per public module of torch_ir, rendered by mkdocstrings.

Run ``python scripts/gen_api_docs.py`` after adding or removing a module; ``make docs`` builds the site
with warnings as errors, and tests/test_api_docs.py fails when these pages are out of date.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "docs" / "api"


def public_modules() -> list[str]:
    """Every importable torch_ir module whose dotted path has no part starting with an underscore (old paths
    that only name a moved module are left out)."""
    sys.path.insert(0, str(ROOT))
    import torch_ir

    names = ["torch_ir"]
    for info in pkgutil.walk_packages(torch_ir.__path__, "torch_ir."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if importlib.import_module(info.name).__name__ != info.name:
            continue  # an old path kept for imports: the module it names has its own page
        names.append(info.name)
    return sorted(names)


def summary(module_name: str) -> str:
    """The first line of a module's docstring."""
    doc = importlib.import_module(module_name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def pages() -> dict[str, str]:
    """File name -> content of every page under docs/api/."""
    modules = public_modules()
    out: dict[str, str] = {}
    rows = "\n".join(f"| [`{m}`]({m}.md) | {summary(m)} |" for m in modules)
    out["index.md"] = (
        "# API reference\n\n"
        "Generated from the docstrings by `python scripts/gen_api_docs.py`; `make docs` builds the site.\n"
        "The public API is what `torch_ir` exports (`extract_ir`, `load_ir`, `verify_ir_with_state_dict`, the IR\n"
        "types, `Pass`, `PassManager`, `register_pass`, `register_op`, the errors); the modules below document\n"
        "the rest, for backends and passes built on torch-ir.\n\n"
        "| module | what it is |\n|---|---|\n" + rows + "\n"
    )
    for module in modules:
        out[f"{module}.md"] = f"# `{module}`\n\n::: {module}\n"
    return out


def main() -> int:
    """Write the pages, removing pages of modules that no longer exist."""
    API_DIR.mkdir(parents=True, exist_ok=True)
    wanted = pages()
    for stale in API_DIR.glob("*.md"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (API_DIR / name).write_text(text)
    print(f"wrote {len(wanted)} pages to {API_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
