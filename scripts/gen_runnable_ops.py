"""Generate torch_ir/ops/runnable_ops.txt: the ATen ops an IR read from a file may run.

The list is the union of three sets, each checked somewhere:

* the Core ATen opset (overloads torch tags ``core``), ``out=`` overloads aside;
* every op type of docs/operators.md: the ops the test suite extracts, runs and compares with eager;
* every op type torch.export leaves in the same test models, and in tiny LLM programs (prefill and
  decode over a KV cache), extracted without passes (``pipeline="none"``: ``copy_``, ``index_copy_``,
  ``_assert_tensor_metadata`` ...), which the test suite runs too;
* every op type in the IRs of the OpInfo samples that pass the sweep (docs/opinfo-results.json,
  ``make optest``) or that tests/test_opinfo.py runs (``gradient#6``: sample 6): each such sample is
  extracted again on meta here and its op types collected.

Ops with effects outside their tensors (``torch_ir.ops.side_effect_reason``) are left out whatever their
source. ``--check`` compares the file with what would be generated, without writing it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "torch_ir" / "ops" / "runnable_ops.txt"
OPERATORS_DOC = ROOT / "docs" / "operators.md"
OPINFO_RESULTS = ROOT / "docs" / "opinfo-results.json"


def core_aten_ops() -> set[str]:
    """Every overload of the Core ATen opset, ``out=`` overloads aside."""
    import torch

    found: set[str] = set()
    for name in dir(torch.ops.aten):
        try:
            packet = getattr(torch.ops.aten, name)
        except (AttributeError, RuntimeError):
            continue
        if not hasattr(packet, "overloads"):
            continue
        for overload in packet.overloads():
            if overload == "out" or overload.endswith("_out"):
                continue
            if torch.Tag.core in getattr(packet, overload).tags:
                found.add(f"aten.{name}.{overload}")
    return found


def checked_ops() -> set[str]:
    """The op types docs/operators.md lists (what the test suite checks against eager)."""
    return set(re.findall(r"^\| `(aten\.[^`]+)` \|", OPERATORS_DOC.read_text(), flags=re.MULTILINE))


def unoptimized_ops() -> set[str]:
    """The op types of the test models and of tiny LLM programs extracted without passes."""
    sys.path.insert(0, str(ROOT))
    from tests.models import MODELS
    from tests.test_transformers_verify import CASES
    from tests.transformers_models import build_causal_lm
    from torch_ir import extract_ir, extract_llm

    modules = []
    for case in MODELS:
        args, kwargs = case.inputs("meta")
        meta = case.build_meta()
        modules.append(
            extract_ir(meta, args, example_kwargs=kwargs, dynamic_shapes=case.dynamic_shapes, pipeline="none")
        )
    for build, inputs in CASES.values():
        args, kwargs = inputs("meta")
        modules.append(extract_ir(build("meta"), args, example_kwargs=kwargs, pipeline="none"))
    for model_type in ("llama", "gpt2"):
        modules.append(extract_llm(build_causal_lm(model_type, "meta"), max_cache_len=16, pipeline="none"))
    return {op for module in modules for op in _op_types(module) if op.startswith("aten.")}


def _op_types(module: object) -> set[str]:
    found: set[str] = set()
    for function in module.functions.values():  # type: ignore[attr-defined]
        for _, node in function.graph.walk():
            found.add(node.op_type)
    init = module.table.init  # type: ignore[attr-defined]
    if init is not None:
        found.update(node.op_type for _, node in init.walk())
    return found


def opinfo_ops() -> set[str]:
    """The op types of the IRs of every OpInfo sample that passes the sweep, extracted again on meta."""
    sys.path.insert(0, str(ROOT))
    from tests.opinfo.sweep import OpModule, first_sample, load_op_db, split_name, to_meta
    from tests.test_opinfo import OPS
    from torch_ir import extract_ir

    results = json.loads(OPINFO_RESULTS.read_text())["results"]
    passing = [r["op"] for r in results if r["category"] == "pass"]
    passing += [name for name in OPS if isinstance(name, str)]  # the samples tests/test_opinfo.py runs
    db = load_op_db()
    found: set[str] = set()
    for name in passing:
        op_name, index = split_name(name)
        op = db.get(op_name)
        if op is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                module = OpModule(op, first_sample(op, index)).eval()
                ir = extract_ir(module, to_meta(module.example_inputs))
            except Exception as exc:  # the sweep passed it with this torch; say so and go on
                print(f"note: {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
        found |= _op_types(ir)
    return {op for op in found if op.startswith("aten.")}


def render(ops: set[str]) -> str:
    """The file: a header, then one op type per line, sorted."""
    import torch

    from torch_ir.ops import op_info

    kept = sorted(op for op in ops if op_info(op).schema is not None and not op_info(op).side_effect_reason)
    header = [
        "# The ATen ops an IR read from a file may run (torch_ir.ops.runnable; OpInfo.untrusted_ok).",
        "# Generated by scripts/gen_runnable_ops.py; do not edit by hand. Sources: the Core ATen opset, the op",
        "# types of docs/operators.md, those of the test models and tiny LLM programs extracted without passes,",
        "# and those of the OpInfo samples that pass in docs/opinfo-results.json.",
        f"# torch {torch.__version__.split('+')[0]}: {len(kept)} op types.",
    ]
    return "\n".join(header + kept) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when the file is out of date")
    args = parser.parse_args(argv)
    text = render(core_aten_ops() | checked_ops() | unoptimized_ops() | opinfo_ops())
    if args.check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is out of date: run python scripts/gen_runnable_ops.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
