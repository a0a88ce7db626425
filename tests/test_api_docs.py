"""The API reference: every public name has a docstring, docs/api/ is current, README links every page."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import gen_api_docs  # noqa: E402


def _public_objects(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, obj in vars(module).items()
            if not n.startswith("_")
            and (inspect.isclass(obj) or inspect.isfunction(obj))
            and getattr(obj, "__module__", None) == module_name
        ]
    return [(f"{module_name}.{n}", getattr(module, n)) for n in names]


def test_every_public_name_has_a_docstring() -> None:
    missing = []
    for module_name in gen_api_docs.public_modules():
        module = importlib.import_module(module_name)
        if not (module.__doc__ or "").strip():
            missing.append(module_name)
        for qualname, obj in _public_objects(module_name):
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not (inspect.getdoc(obj) or "").strip():
                missing.append(qualname)
            if inspect.isclass(obj) and obj.__module__ == module_name:
                fields = getattr(obj, "__dataclass_fields__", {})
                for attr, member in vars(obj).items():
                    documented_kind = inspect.isfunction(member) or isinstance(member, property)
                    if attr.startswith("_") or attr in fields or not documented_kind:
                        continue
                    if not (inspect.getdoc(member) or "").strip():
                        missing.append(f"{qualname}.{attr}")
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)


def test_api_pages_are_current() -> None:
    expected = gen_api_docs.pages()
    actual = {p.name: p.read_text() for p in (ROOT / "docs" / "api").glob("*.md")}
    assert actual == expected, "docs/api/ is out of date: run python scripts/gen_api_docs.py"


def test_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text()
    linked = set(re.findall(r"\]\((docs/[^)#]+)\)", readme))
    pages = {f"docs/{p.relative_to(ROOT / 'docs').as_posix()}" for p in (ROOT / "docs").glob("*.md")}
    pages.add("docs/api/index.md")
    assert pages <= linked, f"README.md does not link: {sorted(pages - linked)}"
    for link in linked:
        assert (ROOT / link).exists(), f"README.md links a missing page: {link}"
