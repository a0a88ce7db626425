"""Mutation testing of torch-ir's core (``make mutate``): plant small bugs with mutmut, count what the tests catch.

``scripts/mutate.toml`` lists the modules: the files mutmut mutates and the tests that cover them. For each
module this script lays a copy of the project in ``build/mutate/<module>/`` (``torch_ir/``, ``tests/`` and
what the tests read) whose ``pyproject.toml`` gains a ``[tool.mutmut]`` section naming just those files and
tests, runs ``mutmut run`` there, and reads back the verdict on every mutant: killed (a test failed),
survived (every test that runs the mutated function passed), no test (no selected test runs it), timeout.
It records each module's counts, date, commit and versions in ``docs/mutation-results.json`` and renders
them into ``docs/testing.md`` (the table) and ``docs/mutation-survivors.md`` (every surviving mutant).

    python scripts/mutate.py                    # every module
    python scripts/mutate.py sandbox passes     # some modules; the others keep their last results
    python scripts/mutate.py --retest sandbox   # the last run's survivors again, with the current tests
    python scripts/mutate.py --retest passes --only "*dedup*"   # only the survivors of matching names
    python scripts/mutate.py --collect sandbox  # record a finished run whose driver was stopped
    python scripts/mutate.py --list             # the modules, their files and tests, nothing run
    python scripts/mutate.py --render           # re-render the docs from the recorded results

A module's copy stays in ``build/mutate/<module>/`` after the run: ``cd`` there and ``mutmut show NAME``
or ``mutmut browse`` to look at its mutants. Each run starts that copy afresh; ``--retest`` reuses it.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "scripts" / "mutate.toml"
BEGIN, END = "<!-- mutate-results:begin -->", "<!-- mutate-results:end -->"
KILLED_STATUSES = ("killed", "timeout")
COLUMNS = ("killed", "survived", "no tests", "timeout", "other")
VERSION_ORDER = ("python", "torch", "mutmut", "pytest")
RUN_FILE = "torch-ir-run.json"
"""What ``prepare`` notes in a module's folder: the commit the copy was made of, and when."""


CONFIG_DIR_VARIABLE = "TORCH_IR_MUTATE_CONFIG_DIR"
WORKER_CONFIG = f"""\"\"\"Written by scripts/mutate.py. torch-ir runs a file's IR in a worker process whose
working folder is its own; mutmut's trampoline reads its configuration from the working folder, so a worker
started by a test loads it here, from the copy's mutants/ folder, before anything else runs.\"\"\"

import os

_root = os.environ.get("{CONFIG_DIR_VARIABLE}")
if _root and os.path.isdir(_root) and os.getcwd() != _root:
    import mutmut.configuration

    _here = os.getcwd()
    try:
        os.chdir(_root)
        mutmut.configuration.config()
    finally:
        os.chdir(_here)
"""
"""The ``sitecustomize.py`` of a module's copy (``also_copy`` puts it into mutants/, on the path the worker
inherits)."""


class MutateError(Exception):
    """A configuration or run problem, said in one line (the script exits 2 with it)."""


@dataclass(frozen=True)
class Module:
    """One row of the table: the files mutmut mutates and the tests that run against the mutants."""

    name: str
    sources: tuple[str, ...]
    tests: tuple[str, ...]

    def files(self) -> list[str]:
        """The source files the globs match, relative to the repository root; MutateError if one matches none."""
        found: list[str] = []
        for pattern in self.sources:
            matches = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern) if p.suffix == ".py")
            if not matches:
                raise MutateError(f"module {self.name}: no Python file matches {pattern!r}; update {_rel(CONFIG)}")
            found += [m for m in matches if m not in found]
        for test in self.tests:
            path = test.split("::")[0]
            if path.endswith(".py") and not (ROOT / path).exists():  # not options such as -k EXPRESSION
                raise MutateError(f"module {self.name}: test path {path!r} does not exist; update {_rel(CONFIG)}")
        return found


@dataclass(frozen=True)
class Settings:
    """The ``[settings]`` table of the configuration."""

    workdir: Path
    copy: tuple[str, ...]
    pytest_args: tuple[str, ...]
    results: Path
    doc: Path
    survivors_doc: Path
    mutmut: dict[str, Any]


@dataclass
class Outcome:
    """What happened to one module's mutants."""

    counts: dict[str, int] = field(default_factory=dict)
    survivors: list[dict[str, Any]] = field(default_factory=list)


def load_config(path: Path = CONFIG) -> tuple[Settings, list[Module]]:
    """The settings and modules of ``path``; MutateError naming the key when one is missing."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        raw = data["settings"]
        settings = Settings(
            workdir=ROOT / raw["workdir"],
            copy=tuple(raw.get("copy", ())),
            pytest_args=tuple(raw.get("pytest_args", ())),
            results=ROOT / raw["results"],
            doc=ROOT / raw["doc"],
            survivors_doc=ROOT / raw["survivors_doc"],
            mutmut=dict(raw.get("mutmut", {})),
        )
        modules = [
            Module(name, tuple(entry["sources"]), tuple(entry["tests"])) for name, entry in data["modules"].items()
        ]
    except KeyError as exc:
        raise MutateError(f"{_rel(path)}: missing key {exc}") from None
    return settings, modules


# ------------------------------------------------------------------------------------------------ one module


def prepare(module: Module, settings: Settings) -> Path:
    """A fresh copy of the project for ``module`` with its ``[tool.mutmut]`` section; returns its folder."""
    folder = settings.workdir / module.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
    for name in ("torch_ir", "tests", *settings.copy):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, folder / name)
    (folder / "sitecustomize.py").write_text(WORKER_CONFIG, encoding="utf-8")
    section = {
        "source_paths": ["torch_ir"],
        "only_mutate": module.files(),
        "pytest_add_cli_args_test_selection": list(module.tests),
        "pytest_add_cli_args": list(settings.pytest_args),
        "also_copy": [*settings.copy, "sitecustomize.py"],  # into mutants/, where the tests run
        "use_git_change_detection": False,
        **settings.mutmut,
    }
    lines = ["", "[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in section.items()]
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (folder / "pyproject.toml").write_text(text.rstrip("\n") + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    (folder / RUN_FILE).write_text(json.dumps({"commit": commit(), "started": time.time()}) + "\n", encoding="utf-8")
    return folder


def run_mutmut(folder: Path, max_children: int, mutants: list[str] | None = None) -> tuple[float, float]:
    """``mutmut run`` in ``folder`` (on the named ``mutants`` only, when given), its output in a log there;
    returns its wall time and the CPU time of all its processes, in seconds."""
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        raise MutateError(f"{mutmut} not found: install the `mutate` extra (make install does)")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env[CONFIG_DIR_VARIABLE] = str((folder / "mutants").resolve())
    log = folder / ("mutmut-retest.log" if mutants else "mutmut.log")
    command = [str(mutmut), "run", "--max-children", str(max_children), *(mutants or [])]
    start, cpu = time.monotonic(), _children_cpu()
    with log.open("w", encoding="utf-8") as out:
        code = subprocess.call(command, cwd=folder, env=env, stdout=out, stderr=out)
    if code != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        raise MutateError(f"mutmut run failed in {_rel(folder)} (exit {code}); the end of {_rel(log)}:\n{tail}")
    return time.monotonic() - start, _children_cpu() - cpu


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children and their descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def refresh_tests(module: Module, settings: Settings) -> Path:
    """The folder of ``module``'s last run with the current ``tests/`` copied in; MutateError when it has not
    run here, or when any file of ``torch_ir/`` changed since (its mutants would no longer be this code)."""
    folder = settings.workdir / module.name
    if not (folder / "mutants").is_dir():
        raise MutateError(f"module {module.name} has no run in {_rel(folder)} to retest: run it first")
    changed = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "torch_ir").rglob("*.py"))
        if not (folder / path.relative_to(ROOT)).exists()
        or (folder / path.relative_to(ROOT)).read_bytes() != path.read_bytes()
    ]
    if changed:
        raise MutateError(
            f"module {module.name}: {', '.join(changed[:5])} changed since its run; run the module afresh instead"
        )
    shutil.rmtree(folder / "tests")
    shutil.copytree(ROOT / "tests", folder / "tests", ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    return folder


@contextmanager
def _inside(folder: Path) -> Iterator[None]:
    """Work in ``folder`` with mutmut's configuration read afresh from there (mutmut reads the cwd)."""
    from mutmut.configuration import reset_config

    previous = Path.cwd()
    os.chdir(folder)
    reset_config()
    try:
        yield
    finally:
        reset_config()
        os.chdir(previous)


def collect(module: Module, folder: Path) -> Outcome:
    """Count the verdicts of every mutant of ``module`` and describe each survivor (function and change)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    outcome = Outcome(counts={"mutants": 0, "unchecked": 0, **dict.fromkeys(COLUMNS, 0)})
    with _inside(folder):
        for path in module.files():
            meta = folder / "mutants" / f"{path}.meta"
            if not meta.exists():
                raise MutateError(f"module {module.name}: mutmut left no results for {path} ({_rel(meta)})")
            verdicts = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
            for name, code in sorted(verdicts.items(), key=lambda item: _mutant_order(item[0])):
                status = status_by_exit_code[code]
                outcome.counts["mutants"] += 1
                if code is None:  # a run stopped before it reached this mutant
                    outcome.counts["unchecked"] += 1
                else:
                    outcome.counts[status if status in COLUMNS else "other"] += 1
                if status in ("survived", "no tests"):
                    diff = get_diff_for_mutant(name, path=path)
                    survivor = {"name": name, "file": path, "function": _function_of(name), "status": status}
                    outcome.survivors.append({**survivor, "change": _changed_lines(diff)})
    return outcome


def _mutant_order(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


def _function_of(name: str) -> str:
    """``torch_ir.runtime.sandbox.xǁExecutionPolicyǁguard__mutmut_3`` -> ``ExecutionPolicy.guard``."""
    stem = name.rpartition("__mutmut_")[0].rpartition(".")[2]
    if stem.startswith("xǁ"):
        return ".".join(part for part in stem[2:].split("ǁ") if part)
    return stem.removeprefix("x_")


def _changed_lines(diff: str) -> list[str]:
    """The removed and added lines of a unified diff, without its headers."""
    return [line.rstrip() for line in diff.splitlines() if line[:1] in "-+" and not line.startswith(("---", "+++"))]


# ------------------------------------------------------------------------------------------------- records


def versions() -> dict[str, str]:
    """The versions a run depends on: Python, torch, mutmut, pytest."""
    found = {"python": platform.python_version()}
    for package in VERSION_ORDER[1:]:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def commit() -> str:
    """The short commit hash, with ``+changes`` when the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = ["git", "status", "--porcelain", "--untracked-files=no", "--", "torch_ir", "tests"]
        dirty = subprocess.run(status, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def record(module: Module, folder: Path, seconds: tuple[float, float | None], max_children: int) -> dict[str, Any]:
    """The JSON record of the finished run in ``folder`` (``seconds``: wall and CPU time, None if unknown)."""
    outcome = collect(module, folder)
    run = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    return {
        "date": datetime.date.today().isoformat(),
        "commit": run["commit"],
        "versions": versions(),
        "machine": f"{os.cpu_count()} cores, {max_children} mutmut workers",
        "minutes": round(seconds[0] / 60, 1),
        "cpu_minutes": None if seconds[1] is None else round(seconds[1] / 60, 1),
        "files": module.files(),
        "tests": list(module.tests),
        **outcome.counts,
        "survivors": outcome.survivors,
    }


def retest(module: Module, settings: Settings, max_children: int, only: list[str]) -> dict[str, Any]:
    """Run the survivors of ``module``'s last run (those whose names match a glob of ``only``, when given)
    again with the current tests; its record, with how many survivors are killed now."""
    entry = load_results(settings.results).get(module.name)
    if entry is None:
        raise MutateError(f"module {module.name} has no recorded results to retest: run it first")
    revision = commit()
    folder = refresh_tests(module, settings)
    names = [s["name"] for s in entry["survivors"] if not only or any(fnmatch.fnmatch(s["name"], g) for g in only)]
    print(f"[mutate] {module.name}: retesting {len(names)} survivors with the current tests")
    if names:
        run_mutmut(folder, max_children, names)
    outcome = collect(module, folder)
    before = len(entry["survivors"])
    entry.update(outcome.counts, survivors=outcome.survivors)
    entry["retest"] = {
        "date": datetime.date.today().isoformat(),
        "commit": revision,
        "killed": before - len(outcome.survivors),
    }
    return entry


def collect_finished(module: Module, settings: Settings, max_children: int) -> dict[str, Any]:
    """The record of ``module``'s folder whose ``mutmut run`` this script did not wait for (its driver was
    stopped, or the run itself, which leaves mutants unchecked: the record says how many): wall time from the
    folder's start to its last verdict, CPU time unknown. Collect only once mutmut no longer runs there."""
    folder = settings.workdir / module.name
    metas = [folder / "mutants" / f"{path}.meta" for path in module.files()]
    if not (folder / RUN_FILE).exists() or not all(meta.exists() for meta in metas):
        raise MutateError(f"module {module.name}: no run to collect in {_rel(folder)}")
    started = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))["started"]
    finished = max(meta.stat().st_mtime for meta in metas)
    return record(module, folder, (finished - started, None), max_children)


def load_results(path: Path) -> dict[str, Any]:
    """The recorded results by module name (empty when none were recorded)."""
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("modules", {})


def save_result(path: Path, name: str, entry: dict[str, Any]) -> None:
    """Record one module's results (read afresh, so runs of other modules meanwhile are kept), as stable JSON."""
    results = {**load_results(path), name: entry}
    _write(path, json.dumps({"modules": results}, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def kill_rate(entry: dict[str, Any]) -> float:
    """Killed (a test failed or timed out) over every mutant checked; a mutant no test runs counts as not
    killed, one a stopped run never reached does not count."""
    checked = entry["mutants"] - entry.get("unchecked", 0)
    return sum(entry[status] for status in KILLED_STATUSES) / checked if checked else 0.0


# --------------------------------------------------------------------------------------------------- render


def render_table(results: dict[str, Any], order: list[str], files: dict[str, list[str]] | None = None) -> str:
    """The markdown of the results section: the table, then the runs' dates and versions. A module whose
    recorded files differ from ``files`` (its files now) is marked: its row is of code that has moved."""
    names = [n for n in order if n in results] + sorted(n for n in results if n not in order)
    if not names:
        return "No module has been run yet: `make mutate`.\n"
    rows = [
        "| module | mutants | killed | survived | no test | timeout | other | kill rate | run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    total = dict.fromkeys(("mutants", "unchecked", *COLUMNS), 0)
    for name in names:
        entry = results[name]
        for key in total:
            total[key] += entry.get(key, 0)
        rows.append(
            f"| {name} | {entry['mutants']} | {entry['killed']} | {entry['survived']} | {entry['no tests']} | "
            f"{entry['timeout']} | {entry['other']} | {kill_rate(entry):.0%}{_partial_note(entry)} | "
            f"{entry['date']}, {entry['commit']}, {_minutes(entry)}{_retest_note(entry)}"
            f"{_stale_note(entry, (files or {}).get(name))} |"
        )
    if len(names) > 1:
        rows.append(
            f"| **all** | {total['mutants']} | {total['killed']} | {total['survived']} | {total['no tests']} | "
            f"{total['timeout']} | {total['other']} | {kill_rate(total):.0%}{_partial_note(total)} | |"
        )
    runs: dict[str, list[str]] = {}
    for name in names:
        entry = results[name]
        known = sorted(entry["versions"].items(), key=lambda kv: (*VERSION_ORDER, kv[0]).index(kv[0]))
        text = ", ".join(f"{k} {v}" for k, v in known) + f"; {entry['machine']}"
        runs.setdefault(text, []).append(name)
    notes = (
        [f"- {', '.join(ms)}: {text}" for text, ms in runs.items()]
        if len(runs) > 1
        else [f"Ran on {next(iter(runs))}."]
    )
    files = [f"- {name}: {', '.join(f'`{f}`' for f in results[name]['files'])}" for name in names]
    return "\n".join([*rows, "", *notes, "", "Files mutated per module:", "", *files]) + "\n"


def _partial_note(entry: dict[str, Any]) -> str:
    unchecked = entry.get("unchecked", 0)
    return f" of {entry['mutants'] - unchecked} checked ({unchecked} not reached)" if unchecked else ""


def _stale_note(entry: dict[str, Any], files: list[str] | None) -> str:
    if files is None or entry["files"] == files:
        return ""
    return "; **stale**: ran on other files than the module has now, rerun it"


def _minutes(entry: dict[str, Any]) -> str:
    cpu = entry.get("cpu_minutes")
    return f"{entry['minutes']} min" + (f" ({cpu} CPU min)" if cpu is not None else "")


def _retest_note(entry: dict[str, Any]) -> str:
    again = entry.get("retest")
    if not again:
        return ""
    checked = entry["mutants"] - entry.get("unchecked", 0)
    before = (sum(entry[status] for status in KILLED_STATUSES) - again["killed"]) / checked
    return f"; survivors rerun {again['date']}, {again['commit']}: {again['killed']} more killed ({before:.0%} before)"


def render_survivors(results: dict[str, Any], order: list[str]) -> str:
    """The whole survivors page: each module's surviving mutants, by function, as removed/added lines."""
    names = [n for n in order if n in results] + sorted(n for n in results if n not in order)
    out = [
        "# Surviving mutants",
        "",
        "Generated by `make mutate` (`scripts/mutate.py`) from `docs/mutation-results.json`: every mutant that",
        'the module\'s tests did not catch, as the lines it changes. "no test" marks a mutant in a function that',
        "none of the module's tests runs. See [Testing](testing.md) for how to read and use this list.",
        "",
        "## Where they are",
        "",
        f"The {SURVIVOR_TABLE_TOP} functions of each module with the most surviving mutants; the lists below",
        "have them all.",
        "",
        *survivor_table(results, names),
    ]
    for name in names:
        entry = results[name]
        tests = ", ".join(f"`{t}`" for t in entry["tests"])
        summary = (
            f"{len(entry['survivors'])} of {entry['mutants']} mutants survived ({entry['date']}, {entry['commit']})"
        )
        out += ["", f"## {name}", "", f"{summary}; tests: {tests}."]
        by_function: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for survivor in entry["survivors"]:
            by_function.setdefault((survivor["file"], survivor["function"]), []).append(survivor)
        for (path, function), survivors in by_function.items():
            out += ["", f"`{path}` `{function}` ({len(survivors)})", "", "```diff"]
            for survivor in survivors:
                tag = " (no test)" if survivor["status"] == "no tests" else ""
                out.append(f"# {survivor['name'].rpartition('__mutmut_')[2]}{tag}")
                out += survivor["change"]
            out.append("```")
    return "\n".join(out) + "\n"


SURVIVOR_TABLE_TOP = 5
"""How many functions of each module the short table of survivors names."""


def survivor_table(results: dict[str, Any], names: list[str], top: int = SURVIVOR_TABLE_TOP) -> list[str]:
    """The short table: per module, the ``top`` functions with the most survivors (those no test runs
    counted apart), then how many survivors the module's other functions hold."""
    rows = ["| module | function | file | survived | no test |", "|---|---|---|---:|---:|"]
    for name in names:
        counts: dict[tuple[str, str], list[int]] = {}
        for survivor in results[name]["survivors"]:
            pair = counts.setdefault((survivor["function"], survivor["file"]), [0, 0])
            pair[survivor["status"] == "no tests"] += 1
        ranked = sorted(counts.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
        for (function, path), (survived, untested) in ranked[:top]:
            rows.append(f"| {name} | `{function}` | `{path}` | {survived} | {untested} |")
        rest = ranked[top:]
        if rest:
            survived, untested = (sum(c[i] for _, c in rest) for i in (0, 1))
            rows.append(f"| {name} | {len(rest)} more functions | | {survived} | {untested} |")
    return rows


def render(settings: Settings, modules: list[Module], results: dict[str, Any]) -> None:
    """Write the results table into the doc page (between its markers) and the survivors page."""
    order = [m.name for m in modules]
    text = settings.doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise MutateError(f"{_rel(settings.doc)} has no {BEGIN} ... {END} markers for the results table")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    files = {m.name: m.files() for m in modules}
    _write(settings.doc, f"{head}{BEGIN}\n{render_table(results, order, files)}{END}{tail}")
    _write(settings.survivors_doc, render_survivors(results, order))


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# ------------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules of scripts/mutate.toml to run (default: all)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1, help="parallel mutmut workers")
    parser.add_argument("--list", action="store_true", help="print each module's files and tests, run nothing")
    parser.add_argument("--render", action="store_true", help="re-render the docs from the recorded results")
    parser.add_argument(
        "--retest", action="store_true", help="run the last run's survivors again with the current tests (no new run)"
    )
    parser.add_argument(
        "--only", nargs="+", default=[], metavar="GLOB", help="with --retest: only the survivors whose names match"
    )
    parser.add_argument(
        "--collect", action="store_true", help="record a module whose mutmut run finished without this script"
    )
    args = parser.parse_args(argv)
    try:
        settings, modules = load_config()
        known = {m.name: m for m in modules}
        unknown = [n for n in args.modules if n not in known]
        if unknown:
            raise MutateError(f"unknown module(s) {', '.join(unknown)}; {_rel(CONFIG)} has: {', '.join(known)}")
        chosen = [known[n] for n in args.modules] if args.modules else modules
        if args.list:
            for module in chosen:
                print(f"{module.name}: {' '.join(module.files())}\n    tests: {' '.join(module.tests)}")
            return 0
        for module in chosen:
            module.files()  # every path checked before the first long run
        for module in [] if args.render else chosen:
            if args.retest:
                entry = retest(module, settings, args.max_children, args.only)
            elif args.collect:
                entry = collect_finished(module, settings, args.max_children)
            else:
                print(f"[mutate] {module.name}: {len(module.files())} file(s), tests {' '.join(module.tests)}")
                folder = prepare(module, settings)
                seconds = run_mutmut(folder, args.max_children)
                entry = record(module, folder, seconds, args.max_children)
            print(
                f"[mutate] {module.name}: {entry['mutants']} mutants, {entry['killed']} killed, "
                f"{entry['survived']} survived, {entry['no tests']} without a test, {entry['timeout']} timeout: "
                f"kill rate {kill_rate(entry):.0%}"
            )
            save_result(settings.results, module.name, entry)
        render(settings, modules, load_results(settings.results))
    except MutateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"[mutate] results in {_rel(settings.doc)} and {_rel(settings.survivors_doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
