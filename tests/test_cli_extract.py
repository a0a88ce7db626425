"""``torch-ir extract``: specs, inputs, dynamic dims, outputs, summary, and clear errors."""

from __future__ import annotations

import json

import pytest

from torch_ir import load_ir
from torch_ir.cli import main
from torch_ir.progress import Progress

NET = """
import torch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x, scale=None):
        y = self.fc(x)
        return y if scale is None else y * scale
"""


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(NET)
    return path


def test_zoo_default_output_name_and_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["extract", "zoo:gpt", "--pipeline", "none"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "gpt.json").is_file()
    for expected in ("model       gpt", "nodes", "parameters", "export", "convert", "write", "gpt.json"):
        assert expected in out
    assert len(load_ir(tmp_path / "gpt.json").nodes) > 50


def test_quiet_prints_nothing_and_pipes_get_no_progress(tmp_path, capsys):
    assert main(["extract", "zoo:gpt", "--pipeline", "none", "-o", str(tmp_path / "g.json"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert main(["extract", "zoo:gpt", "--pipeline", "none", "-o", str(tmp_path / "g.json")]) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal here


def test_verbose_shows_stage_lines(tmp_path, capsys):
    assert main(["extract", "zoo:gpt", "--pipeline", "none", "-o", str(tmp_path / "g.json"), "-v"]) == 0
    err = capsys.readouterr().err
    assert "export" in err and "done" in err


def test_file_spec_with_inputs_and_dynamic_batch(net_file, tmp_path, capsys):
    out = tmp_path / "net.json"
    code = main(
        [
            "extract",
            f"{net_file}:Net",
            "-o",
            str(out),
            "--pipeline",
            "none",
            "--input",
            "2x8:float32",
            "--input",
            "scale=2x4",
            "--dynamic",
            "0=batch:1..64,scale.0=batch:1..64",
        ]
    )
    assert code == 0
    ir = load_ir(out)
    assert ir.inputs[0].type.shape == ("batch", 8)
    assert "batch in [1, 64]" in capsys.readouterr().out


def test_missing_inputs_say_what_to_pass(net_file, capsys):
    assert main(["extract", f"{net_file}:Net", "--pipeline", "none"]) == 2
    assert "--input" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["extract", "zoo:nope"], "unknown zoo model"),
        (["extract", "zoo:gpt", "--input", "1xx2"], "input spec"),
        (["extract", "zoo:gpt", "--dynamic", "0=batch:9..2"], "dynamic dim"),
        (["extract", "zoo:gpt", "--format", "json,svg"], "unknown format svg"),
        (["extract", "no_such_module:f"], "cannot import"),
        (["extract"], "no model spec"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_list_zoo(capsys):
    assert main(["extract", "--list-zoo"]) == 0
    out = capsys.readouterr().out
    assert "zoo:gpt" in out and "hf:llama-2-70b" in out


def test_mermaid_format(tmp_path):
    pytest.importorskip("torch_ir.backends.mermaid")
    out = tmp_path / "g.json"
    assert main(["extract", "zoo:gpt", "--pipeline", "none", "-o", str(out), "--format", "json,mermaid"]) == 0
    assert (tmp_path / "g.mmd").read_text().lstrip().startswith(("flowchart", "graph", "%%"))


def test_default_pipeline_logs_passes(tmp_path, capsys):
    assert main(["extract", "zoo:gpt", "-o", str(tmp_path / "g.json")]) == 0
    assert "passes:" in capsys.readouterr().out


def test_hf_with_config_overrides(tmp_path, capsys):
    pytest.importorskip("transformers")
    out = tmp_path / "llama.json"
    config = "num_hidden_layers=1,hidden_size=32,intermediate_size=64,num_attention_heads=4,num_key_value_heads=2"
    assert (
        main(
            [
                "extract",
                "hf:llama",
                "--config",
                config,
                "--config",
                "vocab_size=64",
                "-o",
                str(out),
                "--pipeline",
                "none",
                "--input",
                "1x16:int64",
                "--dynamic",
                "input_ids.1=seq:2..64",
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert doc["model"] == "llama"
    assert load_ir(out).inputs[0].type.shape == (1, "seq")
    assert "LlamaForCausalLM" not in capsys.readouterr().err


def test_progress_instrumentation_subclasses_the_pass_manager_hooks(capsys):
    from torch_ir.passes.manager import Instrumentation

    progress = Progress(verbose=True)
    inst = progress.instrumentation()
    assert isinstance(inst, Instrumentation)

    class Manager:
        passes = ["p"]

    class FakePass:
        name = "cse"

    class Result:
        modified = True

    inst.before_pipeline(None, Manager())
    inst.before_pass(FakePass(), None, 1)
    inst.after_pass(FakePass(), None, 1, Result())
    inst.after_pipeline(None, Manager())
    err = capsys.readouterr().err
    assert "[1/1] cse" in err and "changed" in err


class _Terminal:
    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_progress_is_live_on_a_terminal_and_quiet_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    terminal = _Terminal()
    progress = Progress(stream=terminal)
    assert progress.enabled and progress.live
    with progress.stage("export"):
        pass
    assert "export" in terminal.text and "done" in terminal.text
    monkeypatch.setenv("CI", "true")
    assert not Progress(stream=_Terminal()).enabled
    assert not Progress(stream=_Terminal(), quiet=True, verbose=False).enabled


DEVICE_NET = """
import torch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        h = self.fc(x)
        return h * 2.0 if x.device.type == "cpu" else h - 1.0
"""


def test_trace_device_is_cpu_by_default_and_meta_on_request(tmp_path, capsys):
    path = tmp_path / "dnet.py"
    path.write_text(DEVICE_NET)
    spec = f"{path}:Net"
    assert main(["extract", spec, "--input", "2x4:float32", "-o", str(tmp_path / "cpu.json"), "-q"]) == 0
    cpu = load_ir(tmp_path / "cpu.json")
    assert cpu.graph.meta["device"] == "cpu" and cpu.nodes[-1].op_type == "aten.mul.Tensor"
    out = str(tmp_path / "meta.json")
    assert main(["extract", spec, "--input", "2x4:float32", "--trace-device", "meta", "-o", out, "-q"]) == 0
    meta = load_ir(out)
    assert meta.graph.meta["device"] == "meta" and meta.nodes[-1].op_type == "aten.sub.Tensor"
    capsys.readouterr()
    assert main(["extract", spec, "--input", "2x4:float32", "--trace-device", "nowhere", "-q"]) == 2
    assert "trace device 'nowhere'" in capsys.readouterr().err
