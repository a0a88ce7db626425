"""The worker process that runs IRs read from files: a crash, a limit hit or a hang there is a clean
``InterpreterError`` that names the limit, and the calling process goes on.

Each hostile behaviour comes from an op a plugin registers with ``register_op`` (the caller's opt-in): the
worker imports the plugin, so the op runs there and only there.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.testing.crafted_ir import crafted_document
from torch_ir import InterpreterError, parse_graph
from torch_ir.cli import main
from torch_ir.ir.module import IR
from torch_ir.runtime.runner import Runner
from torch_ir.runtime.worker import isolation

PLUGIN = """
import os, signal, time
import torch
from torch_ir import register_op

register_op("hostile::crash", kernel=lambda x: os.kill(os.getpid(), signal.SIGSEGV))
register_op("hostile::sleep", kernel=lambda x: (time.sleep(120), x)[1])
def _burn(x):
    while True:
        pass
register_op("hostile::burn", kernel=_burn)
register_op("hostile::hog", kernel=lambda x: torch.ones(1 << 34, dtype=torch.uint8).sum() + x)
register_op("hostile::pid", kernel=lambda x: torch.full_like(x, float(os.getpid())))


def _probe(x):
    import resource
    fds = len(os.listdir("/proc/self/fd")) - 1  # less the one listdir holds
    own_folder = os.path.basename(os.getcwd()).startswith("torch-ir-worker-")
    no_core = resource.getrlimit(resource.RLIMIT_CORE)[0] == 0
    return torch.tensor([float(fds), float(own_folder and no_core)])


register_op("hostile::probe", kernel=_probe)


def _scribble(x, w):
    w.view(-1).fill_(7.0)  # a kernel that writes the weight it was given, and does not say so
    return x + w.sum()


register_op("hostile::scribble", kernel=_scribble)


def build():
    return torch.nn.Identity()
"""


@pytest.fixture
def hostile_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of a plugin module (importable here and in the worker) that registers the hostile ops."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "hostile_ops_for_worker.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    return "hostile_ops_for_worker"


def _ir_file(tmp_path: Path, op: str) -> Path:
    node = {
        "name": "y",
        "op": f"hostile.{op}.default",
        "args": ["%x"],
        "attrs": {},
        "outputs": [{"name": "y", "type": {"shape": [2], "dtype": "float32"}}],
    }
    doc = crafted_document([node], [{"name": "x", "type": {"shape": [2], "dtype": "float32"}}], ["%y"])
    path = tmp_path / f"{op}.json"
    path.write_text(json.dumps(doc))
    return path


def _run(path: Path, plugin: str, **limits: Any) -> Any:
    with isolation(plugins=(plugin,), **limits), Runner(path, {}) as runner:
        assert runner.isolated
        return runner(torch.ones(2))


def test_a_file_runs_in_the_worker_and_an_ir_built_here_in_this_process(tmp_path: Path, hostile_plugin: str) -> None:
    assert float(_run(_ir_file(tmp_path, "pid"), hostile_plugin)[0]) != float(os.getpid())
    built = IR(parse_graph("graph(%x: f32[2]) {\n  %y = aten.neg.default(%x) : (f32[2]) -> f32[2]\n  return %y\n}"))
    with Runner(built, {}) as runner:
        assert not runner.isolated and runner(torch.ones(2)).tolist() == [-1.0, -1.0]


def test_the_worker_holds_no_file_of_the_callers_and_works_in_its_own_folder(
    tmp_path: Path, hostile_plugin: str
) -> None:
    opened = [open(tmp_path / f"held{i}.txt", "w") for i in range(8)]
    try:
        fds, own_folder = _run(_ir_file(tmp_path, "probe"), hostile_plugin).tolist()
    finally:
        for f in opened:
            f.close()
    assert fds <= 6  # stdin, stdout, stderr, its socket, and what torch opens itself: none of the 8 above
    assert own_folder == 1.0


def test_a_crash_in_the_worker_is_an_error_that_says_so(tmp_path: Path, hostile_plugin: str) -> None:
    with pytest.raises(InterpreterError, match=r"the worker crashed \(SIGSEGV\)"):
        _run(_ir_file(tmp_path, "crash"), hostile_plugin)


def test_a_busy_loop_in_the_worker_ends_at_its_cpu_limit(tmp_path: Path, hostile_plugin: str) -> None:
    with pytest.raises(InterpreterError, match=r"CPU time limit of 8 s .*TORCH_IR_WORKER_CPU_SECONDS"):
        _run(_ir_file(tmp_path, "burn"), hostile_plugin, cpu_seconds=8, timeout=120)


def test_an_allocation_past_the_address_space_limit_is_named(tmp_path: Path, hostile_plugin: str) -> None:
    with pytest.raises(InterpreterError, match=r"address-space limit of 6 GiB .*TORCH_IR_WORKER_MEMORY"):
        _run(_ir_file(tmp_path, "hog"), hostile_plugin, memory=6 << 30)


def test_a_hang_in_the_worker_ends_at_its_time_limit_with_exit_status_2(
    tmp_path: Path, hostile_plugin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _ir_file(tmp_path, "sleep")
    before = sorted(p.name for p in tmp_path.iterdir())
    model = f"{hostile_plugin}:build"
    verify = ["verify", str(path), "--model", model, "--input", "2:float32", "--plugin", hostile_plugin]
    code = main([*verify, "--worker-timeout", "40"])  # longer than the worker takes to start on a busy machine
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert re.search(r"did not answer within 40 s while (run|running node by node) .*TORCH_IR_WORKER_TIMEOUT", err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_op_off_the_allow_list_runs_only_when_named_or_registered(
    tmp_path: Path, hostile_plugin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    node = {
        "name": "y",
        "op": "aten.detach_copy.default",
        "args": ["%x"],
        "attrs": {},
        "outputs": [{"name": "y", "type": {"shape": [2], "dtype": "float32"}}],
    }
    doc = crafted_document([node], [{"name": "x", "type": {"shape": [2], "dtype": "float32"}}], ["%y"])
    path = tmp_path / "detach_copy.json"
    path.write_text(json.dumps(doc))
    verify = ["verify", str(path), "--model", f"{hostile_plugin}:build", "--input", "2:float32"]
    assert main(verify) == 2
    assert "--allow-op aten::detach_copy" in capsys.readouterr().err
    assert main([*verify, "--allow-op", "aten::detach_copy"]) == 0
    assert main([*verify, "--allow-op", "aten::detach_copy.out"]) == 2  # another overload is not named
    capsys.readouterr()
    pid = _ir_file(tmp_path, "pid")  # registered with register_op by the plugin: the caller vouches for it
    with isolation(plugins=(hostile_plugin,)), Runner(pid, {}) as runner:
        assert runner(torch.ones(2)).shape == (2,)
    with pytest.raises(InterpreterError, match=r"hostile\.pid\.default.*refused|no kernel"):
        with Runner(pid, {}) as runner:  # without the plugin the worker knows no such op
            runner(torch.ones(2))


def test_weights_reach_the_worker_read_only(tmp_path: Path, hostile_plugin: str) -> None:
    """A kernel that writes a weight in the worker cannot reach the caller's tensor: the worker maps the
    weights read-only, so the write is a crash there, and the caller's weight keeps its values."""
    from tests.testing.crafted_ir import crafted_module

    tensor = {"shape": [2], "dtype": "float32"}
    node = {"name": "y", "op": "hostile.scribble.default", "args": ["%x", "@w"], "attrs": {}}
    node["outputs"] = [{"name": "y", "type": tensor}]
    doc = crafted_module(weights=[{"name": "w", "kind": "parameter", "type": tensor}], nodes=[node], outputs=["%y"])
    path = tmp_path / "scribble.json"
    path.write_text(json.dumps(doc))
    weight = torch.tensor([1.0, 2.0])
    with (
        isolation(plugins=(hostile_plugin,)),
        Runner(path, {"w": weight}) as runner,
        pytest.raises(InterpreterError, match=r"the worker crashed \(SIGSEGV\)"),
    ):
        assert runner.isolated
        runner(torch.ones(2))
    assert weight.tolist() == [1.0, 2.0]
