"""``torch-ir opt``'s workbench for pass authors: the text form as input (file or stdin), parts of a
``--split-input-file`` input, ``--verify-diagnostics`` expected errors, and ``-v`` (the failing pass's
traceback and the IR around the node it failed on)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from torch_ir import PassError, PassManager, VerificationError, parse_graph
from torch_ir.cli import main
from torch_ir.cli.diagnostics import Part, check_errors, error_line, expected_errors, split_input
from torch_ir.errors import TextParseError
from torch_ir.passes.failure import failing_node, ir_around, where

GRAPH = """graph(%x: f32[2,8]) {
  %a = aten.neg.default(%x) : (f32[2,8]) -> f32[2,8]
  %b = aten.neg.default(%x) : (f32[2,8]) -> f32[2,8]
  %c = aten.add.Tensor(%a, %b) : (f32[2,8], f32[2,8]) -> f32[2,8]
  return %c
}
"""


def test_parts_keep_the_line_numbers_of_the_file() -> None:
    text = "a\nb\n// -----\nc\n// ----- (a comment)\n\nd\n"
    parts = split_input(text)
    assert [(p.index, p.line) for p in parts] == [(1, 1), (2, 4), (3, 6)]
    assert [p.text.split("\n").index(w) + 1 for p, w in zip(parts, "acd")] == [1, 4, 7]
    assert split_input("no marker") == [Part("no marker", 1, 1)]


def test_expected_errors_name_their_lines() -> None:
    part = split_input(
        "x\n// expected-error {{here}}\n// expected-error @+2 {{below}}\n\n\n// expected-error@* {{any}}\n"
    )
    assert [(e.text, e.line, e.comment_line) for e in expected_errors(part[0])] == [
        ("here", 2, 2),
        ("below", 5, 3),
        ("any", None, 6),
    ]
    with pytest.raises(ValueError, match="only expected-error is checked"):
        expected_errors(Part("// expected-warning {{x}}", 1, 1))
    with pytest.raises(ValueError, match="expected-error needs its message"):
        expected_errors(Part("// expected-error @+1", 1, 1))


def test_check_errors_compares_text_and_line() -> None:
    [want] = expected_errors(Part("\n// expected-error @+1 {{boom}}\nline3", 1, 1))
    error = PassError("it went boom")
    assert check_errors([want], error, 3) == []
    assert check_errors([want], error, 4) == [
        "2: expected error on line 3 was not produced: 'boom'",
        "4: unexpected error: it went boom",
    ]
    assert check_errors([want], None, None) == ["2: expected error on line 3 was not produced: 'boom'"]
    assert check_errors([], PassError("x"), None) == ["?: unexpected error: x"]
    assert check_errors([], None, None) == []


def test_an_error_line_is_the_parse_line_or_the_node_definition() -> None:
    part = split_input("// -----\n" + GRAPH.replace("%b = ", '%"b 1", %b = '))[1]
    assert error_line(TextParseError("line 7, column 3: bad"), part, None) == 7
    assert error_line(PassError("x"), part, "a") == 3
    assert error_line(PassError("x"), part, "b") == 4  # the second result of a multi-result line
    assert error_line(PassError("x"), part, "nowhere") is None
    assert error_line(PassError("x"), part, None) is None


def test_the_failing_node_is_the_errors_or_the_innermost_frames() -> None:
    g = parse_graph(GRAPH)
    a, b, c = g.nodes

    def inner(node):  # a function of the pass that fails on the node it is given
        raise KeyError(node.name)

    def outer(graph):
        node = c  # noqa: F841  (an outer frame's local: the inner frame's node wins)
        for n in graph.nodes:
            if n is b:
                inner(n)

    try:
        outer(g)
    except KeyError as exc:
        error = PassError("failed")
        error.__cause__ = exc
        assert failing_node(error) is b
    explicit = PassError("pattern failed")
    explicit.node = a
    assert failing_node(explicit) is a
    verifier = PassError("left an invalid graph")
    verifier.__cause__ = VerificationError("graph: node c (aten.add.Tensor) reads %q in operand 0")
    from torch_ir import Module

    assert failing_node(verifier, Module(g)) is c
    assert failing_node(PassError("nothing named")) is None


def test_ir_around_marks_the_node_and_elides_the_rest() -> None:
    lines = ["graph(%x: f32[4]) {"]
    lines += [f"  %v{i} = aten.neg.default(%{'x' if i == 0 else f'v{i - 1}'}) : (f32[4]) -> f32[4]" for i in range(12)]
    lines += ["  return %v11", "}"]
    g = parse_graph("\n".join(lines))
    shown = ir_around(g.nodes[6], context=2).split("\n")
    assert shown[0] == "  ... (5 lines above)"
    assert [line[:4] for line in shown[1:6]] == ["    ", "    ", ">   ", "    ", "    "]
    assert shown[3].startswith(">   %v6 = aten.neg.default(%v5)")
    assert shown[-1] == "  ... (5 lines below)"
    assert where(g.nodes[6]) == "node v6 (aten.neg.default)"


def _opt(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(["opt", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_opt_reads_the_text_form_from_a_file_and_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.tir"
    path.write_text("// a comment first\n" + GRAPH)
    code, out, _ = _opt([str(path), "-p", "cse"], capsys)
    assert code == 0 and "%c = aten.add.Tensor(%a, %a)" in out and "%b" not in out
    stdin = io.StringIO(GRAPH)
    stdin.isatty = lambda: False  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out_stdin, _ = _opt(["-", "-p", "cse"], capsys)
    assert code == 0 and out_stdin == out


def test_opt_split_input_reports_each_failing_part_and_runs_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "parts.tir"
    path.write_text(GRAPH + "// -----\ngraph(%x: f32[2]) {\n  return %y\n}\n// -----\n" + GRAPH)
    code, out, err = _opt([str(path), "--split-input-file", "-p", "cse"], capsys)
    assert code == 2
    assert out.count("%c = aten.add.Tensor(%a, %a)") == 2 and out.count("// -----\n") == 2
    assert f"{path} (part 2, line 8): line 9, column 12: %y is used before it is defined" in err
    assert err.strip().endswith(f"{path}: 1 of 3 part(s) failed")


def test_opt_v_prints_the_traceback_and_the_ir_around_the_failing_node(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "bad.tir"
    path.write_text(
        GRAPH.replace(
            "%b = aten.neg.default(%x) : (f32[2,8]) -> f32[2,8]", "%b = aten.neg.default(%x) : (f32[2,8]) -> f32[2,3]"
        ).replace("(f32[2,8], f32[2,8]) -> f32[2,8]", "(f32[2,8], f32[2,3]) -> f32[2,8]")
    )
    code, _, quiet = _opt([str(path), "-p", "annotate-shapes"], capsys)
    assert code == 2 and "Traceback" not in quiet
    code, _, err = _opt([str(path), "-p", "annotate-shapes", "-v"], capsys)
    assert code == 2
    assert err.startswith("Traceback (most recent call last):")
    assert 'annotate_shapes.py", line' in err
    assert err.index('annotate_shapes.py", line') < err.index("--- IR around")
    assert "--- IR around node b (aten.neg.default), as the pass left it ---" in err
    assert ">   %b = aten.neg.default(%x) : (f32[2,8]) -> f32[2,3]" in err
    assert err.index("--- end ---") < err.index("torch-ir opt: error: pass 'annotate-shapes' (#1) failed")


def test_opt_refuses_flags_that_mean_nothing_together(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "g.tir"
    path.write_text(GRAPH + "// expected-warning {{x}}\n")
    code, _, err = _opt(["--replay", str(path), "--split-input-file"], capsys)
    assert code == 2 and "--replay runs one reproducer" in err
    code, _, err = _opt([str(path), "--verify-diagnostics", "-p", "cse"], capsys)
    assert code == 2 and "only expected-error is checked" in err
    for json_flags in (["--emit", "json"], ["-o", str(tmp_path / "out.json")]):
        code, _, err = _opt([str(path), "--split-input-file", "-p", "cse", *json_flags], capsys)
        assert code == 2 and "print the text form of each part, not JSON" in err, json_flags
    assert not (tmp_path / "out.json").exists()


def test_the_pass_manager_error_of_a_pattern_carries_its_node() -> None:
    from tests.filecheck.Inputs.failing_passes import BrokenPattern

    g = parse_graph(GRAPH)
    with pytest.raises(PassError) as caught:
        PassManager([BrokenPattern()]).run(g)
    assert failing_node(caught.value) is g.nodes[0]
