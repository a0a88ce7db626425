"""``torch-ir view``: Model Explorer on localhost, an IR loaded through the adapter over Model Explorer's HTTP API.

The command runs in a subprocess, as a user runs it; the test reads the URL it prints, talks to the server
(127.0.0.1 only, bounded requests) and stops it with Ctrl+C (SIGINT). Skipped only where the [viz] extra
(ai-edge-model-explorer) is not installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.models import get_model
from tests.testing.perturbed import verify_gpt_with_perturbed
from torch_ir import extract_ir, load_ir
from torch_ir.backends.model_explorer import ADAPTER_ID
from torch_ir.backends.model_explorer.convert import ir_to_graphs
from torch_ir.backends.model_explorer.overlays import FIRST_DIVERGENCE, VERIFY_OVERLAYS
from torch_ir.cli import main

REPO = Path(__file__).resolve().parents[1]
HAS_MODEL_EXPLORER = importlib.util.find_spec("model_explorer") is not None
needs_model_explorer = pytest.mark.skipif(
    not HAS_MODEL_EXPLORER, reason="torch-ir view needs the [viz] extra (ai-edge-model-explorer)"
)
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
START_SECONDS = 180


def _get(url: str) -> Any:
    with DIRECT.open(url, timeout=60) as answer:
        return answer.read().decode()


def _post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with DIRECT.open(request, timeout=120) as answer:
        return json.loads(answer.read().decode())


@contextlib.contextmanager
def serving(args: list[str], tmp_path: Path, stdin: str | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``torch-ir view ARGS`` in a subprocess: the URL it printed, then Ctrl+C (its exit status must be 0)."""
    log = (tmp_path / "view.log").open("w")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch_ir", "view", *args],
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    killer = threading.Timer(START_SECONDS + 120, proc.kill)  # never outlive the test
    killer.start()
    try:
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), f"no URL; log:\n{(tmp_path / 'view.log').read_text()}"
        yield url, proc
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, (tmp_path / "view.log").read_text()
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def _perturbed_gpt(tmp_path: Path) -> tuple[Path, Path, str]:
    """The zoo GPT's IR and a verify report with one weight perturbed on the IR's side: the node it marks."""
    ir, report = verify_gpt_with_perturbed("blocks.3.qkv.weight")
    assert report.divergence is not None
    ir_path, report_path = tmp_path / "gpt.json", tmp_path / "verify.json"
    ir.save(ir_path)
    report_path.write_text(json.dumps(report.to_dict(), default=str))
    return ir_path, report_path, report.divergence.node


@needs_model_explorer
def test_view_serves_the_ir_through_the_adapter(tmp_path: Path) -> None:
    import dacite
    from model_explorer import graph_builder

    ir_path, report_path, diverging = _perturbed_gpt(tmp_path)
    with serving([str(ir_path), "--overlay", str(report_path)], tmp_path) as (url, _):
        parsed = urllib.parse.urlparse(url)
        base = f"{parsed.scheme}://{parsed.netloc}"
        assert _get(f"{base}/check_health") == "model_explorer_ok"
        data = json.loads(urllib.parse.parse_qs(parsed.query)["data"][0])
        assert data["models"] == [{"url": str(ir_path.resolve()), "adapterId": ADAPTER_ID}]
        assert len(data["nodeData"]) == 6

        extensions = json.loads(_get(f"{base}/api/v1/get_extensions"))
        ours = [e for e in extensions if e["id"] == ADAPTER_ID]
        assert ours and ours[0]["type"] == "adapter" and ours[0]["fileExts"] == ["json"]

        command = {
            "extensionId": ADAPTER_ID,
            "cmdId": "convert",
            "modelPath": str(ir_path.resolve()),
            "settings": {},
            "deleteAfterConversion": False,
        }
        answer = _post_json(f"{base}/apipost/v1/send_command", command)
        assert "error" not in answer, answer
        graphs = [dacite.from_dict(graph_builder.Graph, g, config=dacite.Config(strict=True)) for g in answer["graphs"]]
        expected = ir_to_graphs(load_ir(ir_path)).to_dict()["graphs"]
        assert [g.id for g in graphs] == ["forward"]
        assert [n.id for n in graphs[0].nodes] == [n["id"] for n in expected[0]["nodes"]]
        qkv = next(n for n in graphs[0].nodes if n.id == diverging)
        assert qkv.namespace == "blocks/3/qkv" and qkv.label == "linear"

        loaded = {}
        for index in range(len(data["nodeData"])):
            content = json.loads(_get(f"{base}/api/v1/load_node_data?node_data_index={index}"))["content"]
            node_data = json.loads(content)
            loaded[node_data["forward"]["name"]] = node_data["forward"]["results"]
        errors = loaded[VERIFY_OVERLAYS["max_abs_error"]]
        assert [n for n, r in errors.items() if r.get("bgColor") == FIRST_DIVERGENCE] == [diverging]
        assert loaded["FLOPs"][diverging]["value"] > 0

        bad = _post_json(f"{base}/apipost/v1/send_command", {**command, "modelPath": str(report_path)})
        assert "error" in bad and "graphs" not in bad

        # a module with a private function: its body is one more graph, which every call links to
        outlined, calls = _outlined_gpt(tmp_path)
        answer = _post_json(f"{base}/apipost/v1/send_command", {**command, "modelPath": str(outlined)})
        ids = [g["id"] for g in answer["graphs"]]
        assert ids == [g["id"] for g in ir_to_graphs(load_ir(outlined)).to_dict()["graphs"]] and len(ids) == 2
        linked = [n["id"] for n in answer["graphs"][0]["nodes"] if n.get("subgraphIds") == [ids[1]]]
        assert linked == calls


def _outlined_gpt(tmp_path: Path) -> tuple[Path, list[str]]:
    """The zoo GPT with its blocks outlined into one private function, saved; the names of its calls."""
    from torch_ir import PassManager
    from torch_ir.ir.calls import CALL_OP
    from torch_ir.zoo import ZOO

    entry = ZOO["gpt"]
    with torch.device("meta"):
        ir = extract_ir(entry.build().eval(), entry.example_args("meta"), pipeline="none")
    PassManager("annotate-shapes,canonicalize,outline-repeated-blocks").run(ir)
    path = tmp_path / "outlined.json"
    ir.save(path)
    calls = [n.name for n in ir.graph.nodes if n.op_type == CALL_OP]
    assert len(calls) > 1
    return path, calls


@needs_model_explorer
@pytest.mark.parametrize("form", ["json", "text"])
def test_view_reads_the_ir_from_stdin(tmp_path: Path, form: str) -> None:
    """JSON or the text form, on stdin: the adapter gets a JSON file of the same IR, gone after the server."""
    case = get_model("cond_router")
    args, kwargs = case.inputs("meta")
    path = tmp_path / "cond.json"
    ir = extract_ir(case.build_meta(), args, example_kwargs=kwargs)
    ir.save(path)
    text = path.read_text() if form == "json" else ir.to_text(metadata=True) + "\n"
    with serving(["-"], tmp_path, stdin=text) as (url, _):
        parsed = urllib.parse.urlparse(url)
        model_path = json.loads(urllib.parse.parse_qs(parsed.query)["data"][0])["models"][0]["url"]
        if form == "json":
            assert Path(model_path).read_text() == text
        else:
            assert load_ir(model_path).to_text() == ir.to_text()
        command = {
            "extensionId": ADAPTER_ID,
            "cmdId": "convert",
            "modelPath": model_path,
            "settings": {},
            "deleteAfterConversion": False,
        }
        answer = _post_json(f"{parsed.scheme}://{parsed.netloc}/apipost/v1/send_command", command)
        ids = [g["id"] for g in answer["graphs"]]
        assert ids == ["forward", "forward/cond/true", "forward/cond/false"]
    assert not Path(model_path).exists(), "the copy of stdin outlived the server"


def _saved(tmp_path: Path) -> Path:
    case = get_model("map_rows")
    args, kwargs = case.inputs("meta")
    path = tmp_path / "map.json"
    extract_ir(case.build_meta(), args, example_kwargs=kwargs).save(path)
    return path


def test_report_writes_model_explorer_files_without_the_package(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    code = (
        "import sys; sys.modules['model_explorer'] = None\n"
        "from torch_ir.cli import main\n"
        f"sys.exit(main(['report', {str(path)!r}, '--format', 'model-explorer', '-o', {str(tmp_path / 'out')!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert done.returncode == 0, done.stderr
    graphs = json.loads((tmp_path / "out" / "graphs.json").read_text())
    assert [g["id"] for g in graphs["graphs"]] == ["forward", "forward/map_impl/body"]


def test_view_without_model_explorer_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _saved(tmp_path)
    for name in ("model_explorer", "model_explorer.server", "model_explorer.config"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["view", str(path)]) == 2
    err = capsys.readouterr().err
    assert "torch-ir[viz]" in err and "Traceback" not in err


@needs_model_explorer
def test_view_on_a_port_in_use_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _saved(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["view", str(path), "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--port", "0"], "expected a port number from 1 to 65535"),
        (["--overlay", "-"], "--overlay reads a file"),
        (["--bind", "seq=4"], "the IR has no symbolic dim 'seq'"),
    ],
)
def test_view_usage_errors(extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _saved(tmp_path)
    assert main(["view", str(path), *extra]) == 2
    assert message in capsys.readouterr().err


def test_view_refuses_an_overlay_of_another_ir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _saved(tmp_path)
    report = tmp_path / "verify.json"
    report.write_text(json.dumps({"passed": False, "divergence": {"node": "no_such_node"}, "node_errors": []}))
    assert main(["view", str(path), "--overlay", str(report)]) == 2
    assert "was the report made from another IR" in capsys.readouterr().err
