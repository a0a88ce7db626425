"""Property-based tests of the spec parsers: pipeline text, pipeline files, input and dynamic-dim specs.

Every input either parses or raises a ``TorchIRError``: no other exception, no hang. ``make fuzz`` runs these
with many more examples (the ``fuzz`` hypothesis profile, registered in tests/test_fuzz_ir_loaders.py).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests import test_fuzz_ir_loaders  # noqa: F401  (registers and loads the hypothesis profile)
from torch_ir import TorchIRError
from torch_ir.frontends.inputs import parse_dynamic_spec, parse_input_spec
from torch_ir.passes.pipeline import load_pipeline_file, parse_pipeline, pipeline_from_document

PIPELINE_TOKENS = [
    "annotate-shapes",
    "canonicalize",
    "cse",
    "dce",
    "hoist-weights",
    "dedup-weights",
    "eliminate-dead-nodes",
    "min-numel",
    "=",
    "16",
    "-1",
    "1e9",
    "true",
    "none",
    "{",
    "}",
    ",",
    " ",
    '"x"',
    "[",
    "]",
    "(",
    ")",
    "cse2",
    "",
    "fallback",
    "99999999999999999999999",
    "\n",
    "\\",
    "'",
]


@given(st.lists(st.sampled_from(PIPELINE_TOKENS), max_size=14))
def test_pipeline_text_parses_or_raises(tokens: list[str]) -> None:
    text = "".join(tokens)
    try:
        pipeline = parse_pipeline(text)
    except TorchIRError:
        return
    assert str(parse_pipeline(str(pipeline))) == str(pipeline)  # what parses, prints back and reparses


@given(st.text(max_size=80))
def test_arbitrary_pipeline_text_parses_or_raises(text: str) -> None:
    try:
        parse_pipeline(text)
    except TorchIRError:
        pass


documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.sampled_from(["cse", "dce", "hoist-weights", "min-numel", "verify-each", "plugins", "passes"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "passes",
                    "pass",
                    "name",
                    "options",
                    "plugins",
                    "steps",
                    "verify-each",
                    "instrumentation",
                    "min-numel",
                    "dump-dir",
                ]
            )
            | st.text(max_size=6),
            children,
            max_size=4,
        )
    ),
    max_leaves=15,
)


@given(documents)
def test_pipeline_documents_load_or_raise(doc: object) -> None:
    try:
        pipeline_from_document(doc)
    except TorchIRError:
        pass


@given(st.sampled_from([".toml", ".yaml", ".json", ".yml"]), st.binary(max_size=120) | documents.map(json.dumps))
def test_pipeline_files_load_or_raise(suffix: str, content: bytes | str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"pipeline{suffix}"
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        try:
            load_pipeline_file(path)
        except TorchIRError:
            pass


INPUT_TOKENS = [
    "1",
    "128",
    "x",
    ":",
    "int64",
    "float32",
    "bf16",
    "=",
    "mask",
    "scalar",
    "0",
    ".",
    "..",
    "-",
    "",
    "batch",
    "99999999999999999999",
    " ",
    "seq",
    "input_ids",
]


@given(st.lists(st.sampled_from(INPUT_TOKENS), max_size=10) | st.text(max_size=30).map(lambda t: [t]))
def test_input_and_dynamic_specs_parse_or_raise(tokens: list[str]) -> None:
    text = "".join(tokens)
    for parse in (parse_input_spec, parse_dynamic_spec):
        try:
            spec = parse(text)
        except TorchIRError:
            continue
        assert parse(str(spec)) == spec
