"""Every shell and Python example in README.md and docs/*.md runs as written: docs cannot lie.

A page's fenced ``bash`` (``sh``, ``shell``) and ``python`` blocks run in order, as a reader pastes them, in
one temporary folder outside the checkout with a ``.venv/bin`` holding ``torch-ir`` (the installed console
script, which does not search the current folder for modules), ``python``, ``lit``, ``filecheck`` and
``activate``, and no ``PYTHONPATH``. Only the pages in ``CHECKOUT_PAGES``, which say that their commands run
from the repository root, get a folder laid out like a fresh clone (``Makefile``, ``pipelines/``,
``examples/``, ``tests/`` linked in). Python blocks of a page share one namespace; each shell block runs in a fresh
``bash -e -o pipefail``. ``make TARGET`` lines are checked with ``make -n`` (the target exists) rather than
run. README.md's shell blocks get no ``torch-ir`` on PATH: they must activate ``.venv`` or name
``.venv/bin/torch-ir``, as a new user must.

Every name a block uses is defined in it or in a block above it on the page: setup is never hidden. The one
marker, on the line before a fence (an HTML comment, invisible when rendered):

- ``<!-- docs-test: skip (reason) -->``: the block is not run (network, installs, large models, the test
  suite itself); the reason is required.

Other fences (output, diagrams, ``text``, ``toml``, ``json``) are not run.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN_LANGS = {"bash": "shell", "sh": "shell", "shell": "shell", "python": "python"}

PAGE_SKIPS: dict[str, str] = {}
"""Pages not run at all, with the reason (none now: mark single blocks in the page instead)."""

CHECKOUT_PAGES: dict[str, str] = {
    "README.md": "In a fresh clone",
    "docs/setup.md": "## From a checkout",
    "docs/benchmarks.md": "From the repository root",
    "docs/pipelines.md": "From the repository root",
    "docs/testing.md": "From the repository root",
    "docs/usage.md": "run it from the repository root",
}
"""Pages whose commands run in a checkout (``make``, ``pipelines/``, ``python -m tests``), with the words by
which each tells its reader so. Every other page runs in an empty folder."""

_FENCE = re.compile(r"^```(\S*)\s*$")
_SKIP = re.compile(r"^<!-- docs-test: skip \((.+)\) -->$")


@dataclass
class Block:
    """One fenced example: its page, first line, language, text, and its markers."""

    page: str
    line: int
    lang: str
    text: str
    skip: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse_blocks(path: Path, root: Path = REPO) -> list[Block]:
    """The fenced blocks of a page, with the markers that precede them; a malformed marker, or hidden setup,
    is an error."""
    page = str(path.relative_to(root))
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    skip: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("<!-- docs-test"):
            assert not line.startswith("<!-- docs-test: setup"), (
                f"{page}:{i + 1}: hidden setup: a reader pasting the example would not have it; show it in the "
                "example, or in one above it that the text points to"
            )
            match = _SKIP.match(line.strip())
            assert match, f"{page}:{i + 1}: malformed marker {line!r}; use <!-- docs-test: skip (reason) -->"
            skip = match.group(1)
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip():
                skip = None
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        blocks.append(Block(page, i + 1, fence.group(1), "\n".join(lines[i + 1 : end]) + "\n", skip))
        skip = None
        i = end + 1
    return blocks


CLONE_FILES = ("Makefile", "pyproject.toml", "requirements.lock", "requirements.in", "pipelines", "examples", "tests")
"""What a page run from the repository root finds there (linked from this checkout)."""


def _reader_folder(folder: Path, activate_on_path: bool, checkout: bool) -> dict[str, str]:
    """Set ``folder`` up as a reader's after ``make install`` (a clone of the repository when ``checkout``,
    else an empty folder of their own); return the environment to run in."""
    if checkout:
        for name in CLONE_FILES:
            (folder / name).symlink_to(REPO / name)
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    console_script = Path(sys.executable).with_name("torch-ir")
    torch_ir = f'"{console_script}"' if console_script.exists() else f'"{sys.executable}" -I -m torch_ir'
    for name, command in (
        ("torch-ir", torch_ir),
        ("python", f'"{sys.executable}"'),
        ("python3", f'"{sys.executable}"'),
    ):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        shim.chmod(0o755)
    for name in ("lit", "filecheck"):  # the test tools make install puts in .venv/bin
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{Path(sys.executable).with_name(name)}" "$@"\n')
        shim.chmod(0o755)
    (bin_dir / "activate").write_text(f'export VIRTUAL_ENV="{folder / ".venv"}"\nexport PATH="{bin_dir}:$PATH"\n')
    (folder / ".venv" / ".installed").touch()
    path = "/usr/local/bin:/usr/bin:/bin"
    env = {
        "PATH": f"{bin_dir}:{path}" if activate_on_path else path,
        "HOME": os.environ.get("HOME", str(folder)),
        "LANG": "C.UTF-8",
        "CI": "1",
    }
    return env


def _shell_script(block: Block) -> str:
    """The block as a bash script; ``make TARGET ...`` lines become ``make -n`` checks."""
    out = ["set -e -o pipefail"]
    for line in block.text.splitlines():
        stripped = line.strip()
        if stripped.startswith("make "):
            targets = [t for t in stripped.split("#", 1)[0].split()[1:] if not t.startswith("-")]
            out.append(f"make -n {' '.join(targets)} > /dev/null")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _run_shell(block: Block, cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(
        ["bash", "-c", _shell_script(block)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, (
        f"{block.where}: shell example failed (exit {proc.returncode})\n{block.text}\n"
        f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    )


def _run_python(block: Block, namespace: dict[str, object]) -> None:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(block.text, block.where, "exec"), namespace)
    except Exception as exc:
        message = f"{block.where}: Python example failed: {type(exc).__name__}: {exc}\n{block.text}"
        raise AssertionError(message) from exc


def _page_id(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.fixture
def registries() -> Iterator[None]:
    """Put the pass and op registries back as they were: examples register passes and ops."""
    from torch_ir.ops import registry as ops
    from torch_ir.passes import registry as passes

    passes.all_passes()  # the built-in passes register on first use: before the snapshot
    saved = [(table, dict(table)) for table in (passes._PASSES, passes._ALIASES)]
    registrations = ops.snapshot_registrations()
    yield
    for table, before in saved:
        table.clear()
        table.update(before)
    ops.restore_registrations(registrations)


@pytest.mark.docs
@pytest.mark.parametrize("page", PAGES, ids=_page_id)
@pytest.mark.usefixtures("registries")
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _page_id(page)
    if name in PAGE_SKIPS:
        pytest.skip(PAGE_SKIPS[name])
    blocks = [b for b in parse_blocks(page) if b.lang in RUN_LANGS]
    if not any(b.skip is None for b in blocks):
        pytest.skip("no runnable examples")
    env = _reader_folder(tmp_path, activate_on_path=name != "README.md", checkout=name in CHECKOUT_PAGES)
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("docs_example")  # a real module: dataclasses look their module up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace: dict[str, object] = module.__dict__
    for block in blocks:
        if block.skip is not None:
            continue
        if RUN_LANGS[block.lang] == "shell":
            _run_shell(block, tmp_path, env)
        else:
            _run_python(block, namespace)


def test_every_skip_marker_names_a_reason_and_precedes_a_fence() -> None:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"<!-- docs-test: skip \((.*?)\) -->\n(.*)", text):
            assert match.group(1).strip(), f"{page}: a skip marker without a reason"
            assert match.group(2).startswith("```"), f"{page}: a skip marker not right before a fence"


def test_no_indented_shell_examples() -> None:
    """Shell examples are fenced (so this test runs them), never indented code blocks."""
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(r"^    (torch-ir|python|make|pip|uv|\.venv/bin/)\b", line):
                raise AssertionError(f"{page.relative_to(REPO)}:{number}: an indented example; put it in a fence")


def test_parser_reads_markers(tmp_path: Path) -> None:
    page = REPO / "README.md"
    blocks = parse_blocks(page)
    assert blocks and all(b.page == "README.md" for b in blocks)
    fake = tmp_path / "page.md"
    fake.write_text(
        "<!-- docs-test: skip (needs the network) -->\n```bash\npip install x\n```\n\n"
        "```python\nx = 1\nprint(x)\n```\n\n```bash\necho hi\n```\n"
    )
    blocks = parse_blocks(fake, tmp_path)
    assert [(b.lang, b.skip) for b in blocks] == [("bash", "needs the network"), ("python", None), ("bash", None)]
    hidden = tmp_path / "hidden.md"
    hidden.write_text("<!-- docs-test: setup\nx = 1\n-->\n```python\nprint(x)\n```\n")
    with pytest.raises(AssertionError, match="hidden.md:1: hidden setup"):
        parse_blocks(hidden, tmp_path)
    assert _shell_script(Block("p", 1, "bash", "make demo   # the demo\nls\n")).splitlines()[1] == (
        "make -n demo > /dev/null"
    )


def test_readme_commands_need_the_venv() -> None:
    """README's shell blocks that call torch-ir activate .venv first or name .venv/bin/torch-ir."""
    for block in parse_blocks(REPO / "README.md"):
        if block.lang != "bash" or block.skip is not None or "torch-ir" not in block.text:
            continue
        activates = "source .venv/bin/activate" in block.text or ". .venv/bin/activate" in block.text
        for line in block.text.splitlines():
            if line.strip().startswith("torch-ir") and not activates:
                raise AssertionError(f"{block.where}: {line.strip()!r} without activating .venv")


def test_pages_run_from_a_checkout_say_so() -> None:
    for name, words in CHECKOUT_PAGES.items():
        assert words in (REPO / name).read_text(encoding="utf-8"), f"{name} does not tell its reader: {words!r}"


def test_no_page_hides_setup() -> None:
    for page in PAGES:
        assert "docs-test: setup" not in page.read_text(encoding="utf-8"), f"{page.relative_to(REPO)}: hidden setup"


@pytest.mark.docs
def test_example_pass_commands_run_outside_the_checkout(tmp_path: Path) -> None:
    """docs/extending.md's ``--plugin examples.passes...`` commands, in an empty folder: the example passes
    are installed with torch-ir, so they do not need the repository as the current folder."""
    blocks = [b for b in parse_blocks(REPO / "docs" / "extending.md") if "--plugin examples." in b.text]
    assert blocks and all(b.skip is None for b in blocks)
    env = _reader_folder(tmp_path, activate_on_path=True, checkout=False)
    assert not (tmp_path / "examples").exists()
    check = "torch-ir passes --plugin examples.passes.fold_batchnorm | grep -q '^fold-batchnorm'\n"
    _run_shell(Block("docs/extending.md", 0, "bash", check), tmp_path, env)


def test_the_mermaid_checker_finds_the_parser_make_installs() -> None:
    from tests.testing.mermaid import DEFAULT_INSTALL

    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert f"MERMAID_JS := {DEFAULT_INSTALL.name}" in makefile and DEFAULT_INSTALL.parent == REPO
