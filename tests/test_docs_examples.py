"""Every shell and Python example in README.md and docs/*.md runs as written: docs cannot lie.

A page's fenced ``bash`` (``sh``, ``shell``) and ``python`` blocks run in order, in one temporary folder that
looks like a fresh clone (``Makefile``, ``pipelines/``, ``examples/``, ``tests/`` linked in, and a
``.venv/bin`` with ``torch-ir``, ``python`` and ``activate`` that run this checkout). Python blocks of a
page share one namespace; each shell block runs in a fresh ``bash -e -o pipefail``. ``make TARGET`` lines
are checked with ``make -n`` (the target exists) rather than run. README.md's shell blocks get no
``torch-ir`` on PATH: they must activate ``.venv`` or name ``.venv/bin/torch-ir``, as a new user must.

Markers in the page, on the line before a fence (HTML comments, invisible when rendered):

- ``<!-- docs-test: skip (reason) -->``: the block is not run (network, installs, large models, the test
  suite itself); the reason is required.
- ``<!-- docs-test: setup`` ... ``-->``: Python run before the block, for names the text takes as given
  (``model``, ``ir``).

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

_FENCE = re.compile(r"^```(\S*)\s*$")
_SKIP = re.compile(r"^<!-- docs-test: skip \((.+)\) -->$")
_SETUP_START = "<!-- docs-test: setup"


@dataclass
class Block:
    """One fenced example: its page, first line, language, text, and its markers."""

    page: str
    line: int
    lang: str
    text: str
    skip: str | None = None
    setup: str = ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse_blocks(path: Path, root: Path = REPO) -> list[Block]:
    """The fenced blocks of a page, with the markers that precede them; a malformed marker is an error."""
    page = str(path.relative_to(root))
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    skip: str | None = None
    setup: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("<!-- docs-test"):
            if line.startswith(_SETUP_START):
                end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "-->"), None)
                assert end is not None, f"{page}:{i + 1}: docs-test setup comment without a closing -->"
                setup = lines[i + 1 : end]
                i = end + 1
                continue
            match = _SKIP.match(line.strip())
            assert match, f"{page}:{i + 1}: malformed marker {line!r}; use <!-- docs-test: skip (reason) -->"
            skip = match.group(1)
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip():
                skip, setup = None, []
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        blocks.append(Block(page, i + 1, fence.group(1), "\n".join(lines[i + 1 : end]) + "\n", skip, "\n".join(setup)))
        skip, setup = None, []
        i = end + 1
    return blocks


def _clone_like(folder: Path, activate_on_path: bool) -> dict[str, str]:
    """Make ``folder`` look like a fresh clone after ``make install``; return the environment to run in."""
    for name in (
        "Makefile",
        "pyproject.toml",
        "requirements.lock",
        "requirements.in",
        "pipelines",
        "examples",
        "tests",
        "torch_ir",
    ):
        (folder / name).symlink_to(REPO / name)
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, module in (("torch-ir", "-m torch_ir"), ("python", ""), ("python3", "")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {module} "$@"\n')
        shim.chmod(0o755)
    (bin_dir / "activate").write_text(f'export VIRTUAL_ENV="{folder / ".venv"}"\nexport PATH="{bin_dir}:$PATH"\n')
    (folder / ".venv" / ".installed").touch()
    path = "/usr/local/bin:/usr/bin:/bin"
    env = {
        "PATH": f"{bin_dir}:{path}" if activate_on_path else path,
        "HOME": os.environ.get("HOME", str(folder)),
        "PYTHONPATH": str(REPO),
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
            if block.setup:
                exec(compile(block.setup, f"{block.where} (setup)", "exec"), namespace)
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
    env = _clone_like(tmp_path, activate_on_path=name != "README.md")
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
        "<!-- docs-test: setup\nx = 1\n-->\n```python\nprint(x)\n```\n\n```bash\necho hi\n```\n"
    )
    blocks = parse_blocks(fake, tmp_path)
    assert [(b.lang, b.skip, b.setup) for b in blocks] == [
        ("bash", "needs the network", ""),
        ("python", None, "x = 1"),
        ("bash", None, ""),
    ]
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
