"""``torch-ir verify IR.json --model SPEC``: run the IR with real weights and compare with eager PyTorch.

The model is built on the CPU from its spec with informative random weights (``--seed``; no norm, bias or
running statistic left at its identity value) unless ``--weights`` gives a ``.safetensors`` file (or a
sharded ``model.safetensors.index.json``), which then feeds both the IR and the eager model; a parameter or
persistent buffer the file lacks is an error (exit 2) unless ``--fill-from-model`` takes it from the model,
and the report then names it. Inputs are drawn at random (``--seed``): token ids inside the vocabulary or
the range the IR indexes, or the range an ``--input`` gives. ``--trials N`` runs N seeds. Prints the
report; exits 0 when every output matches in every trial, 1 when one does not, 2 when the inputs or
weights do not fit the IR.

The IR comes from a file, so it is untrusted: it runs in a worker process with hard limits (address space,
CPU time, a time limit per answer; --worker-memory, --worker-cpu-seconds, --worker-timeout or
TORCH_IR_WORKER_*), only ops of torch-ir's allow-list run (--allow-op NS::op adds one), and the values it
holds live at once may take at most --memory-budget bytes (TORCH_IR_MEMORY_BUDGET).
"""

from __future__ import annotations

import argparse
from typing import Any

from torch_ir.cli import UsageError
from torch_ir.cli.options import (
    add_verbose,
    byte_count,
    non_negative_int,
    positive_int,
    positive_seconds,
    tolerance,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``verify`` subcommand."""
    parser = subparsers.add_parser(
        "verify",
        help="check an IR numerically against eager PyTorch with real weights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  torch-ir verify gpt.json --model zoo:gpt\n"
            "  torch-ir verify model.json --model my_pkg.models:build --weights model.safetensors\n"
            "  torch-ir extract hf:gpt2 --input 1x16:int64 -o gpt2.json\n"
            "  torch-ir verify gpt2.json --model hf:gpt2 --input 1x16:int64 --rtol 1e-3\n"
            "  torch-ir verify fused.json --model hf:llama --config num_hidden_layers=2,hidden_size=32 \\\n"
            "      --plugin examples.passes.gqa_attention --allow-op torch_ir_examples::gqa_attention\n"
            "  torch-ir verify llm.json --model hf:llama --config num_hidden_layers=2,hidden_size=32 --generate 8\n"
            "  torch-ir extract zoo:gpt -o - | torch-ir verify - --model zoo:gpt\n"
            "\n"
            "  torch-ir verify gpt.json --model zoo:gpt --input ids:1x32:int64:0..1024 --trials 5\n"
            "\n"
            "--input must match the shapes the IR was extracted with (or its --dynamic ranges); LOW..HIGH draws\n"
            "its values in [LOW, HIGH).\n"
            "exit status: 0 every output matches, 1 an output or token differs, 2 inputs, weights or usage\n"
            "that do not fit the IR."
        ),
    )
    parser.add_argument(
        "ir", help="the IR file (JSON written by torch-ir extract / IR.save, or the text form); '-' reads stdin"
    )
    parser.add_argument("--model", required=True, help="model spec: zoo:NAME, hf:..., package.module:factory")
    parser.add_argument("--weights", help="a .safetensors file, a sharded *.index.json, or a folder of them")
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="[NAME=]SHAPE[:DTYPE][:LOW..HIGH]",
        help="a test input, e.g. 1x128:int64 or ids:1x32:int64:0..50257 (values drawn in [LOW, HIGH)); "
        "repeatable; default: the model's example inputs",
    )
    parser.add_argument("--rtol", type=tolerance, default=None, help="relative tolerance (default: by dtype)")
    parser.add_argument("--atol", type=tolerance, default=None, help="absolute tolerance (default: by dtype)")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed for the random weights and inputs (default 0)"
    )
    parser.add_argument(
        "--trials",
        type=positive_int,
        default=3,
        metavar="N",
        help="how many trials, each with inputs drawn with its own seed (--seed, --seed+1, ...; default 3)",
    )
    parser.add_argument("--device", default="cpu", help="where the interpreter runs (default cpu)")
    parser.add_argument(
        "--fill-from-model",
        action="store_true",
        help="take parameters and buffers --weights lacks from the model's own (random) ones instead of failing; "
        "the report lists each one",
    )
    parser.add_argument(
        "--check-types",
        action="store_true",
        help="compare every intermediate's shape and dtype with its declared type, not only the outputs'",
    )
    parser.add_argument(
        "--allow-side-effects",
        action="store_true",
        help="let the IR run ops that act outside their tensors (file I/O, printing, RNG state); "
        "only for an IR you trust",
    )
    parser.add_argument(
        "--allow-op",
        action="append",
        default=[],
        metavar="NS::OP",
        help="let the IR run this op although it is not on torch-ir's allow-list (inductor::_reinterpret_tensor); "
        "repeatable; only for an op you trust",
    )
    parser.add_argument(
        "--memory-budget", type=byte_count, metavar="BYTES", help="bytes the run may hold live at once (8G, 512M)"
    )
    parser.add_argument(
        "--worker-memory", type=byte_count, metavar="BYTES", help="address-space limit of the worker process"
    )
    parser.add_argument("--worker-cpu-seconds", type=positive_int, metavar="N", help="CPU seconds the worker may use")
    parser.add_argument(
        "--worker-timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help="how long to wait for each answer of the worker",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the IR in this process instead of a worker (no hard limits): only for an IR you trust",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE,...",
        help="config overrides for the model (hf: config keys, or factory keyword arguments), as in extract",
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (custom ops and their kernels a pass put in the IR); repeatable",
    )
    parser.add_argument(
        "--generate",
        type=positive_int,
        metavar="N",
        help="for a prefill/decode program: greedy-decode N tokens through the IR against eager transformers",
    )
    parser.add_argument(
        "--prompt-len", type=positive_int, default=8, help="random prompt length for --generate (default 8)"
    )
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Verify; print the report; 0 when valid, 1 when not."""
    from torch_ir.ops.runnable import allowed_op_names
    from torch_ir.runtime.worker import isolation

    allowed_op_names(args.allow_op)  # a malformed name is an error before any work
    with isolation(
        isolate=False if args.in_process else None,
        memory_budget=args.memory_budget,
        allow_ops=tuple(args.allow_op),
        plugins=tuple(args.plugin),
        memory=args.worker_memory,
        cpu_seconds=args.worker_cpu_seconds,
        timeout=args.worker_timeout,
    ):
        return _verify(args)


def _verify(args: argparse.Namespace) -> int:
    import torch

    from torch_ir.cli.streams import read_ir
    from torch_ir.errors import VerificationError, WeightError
    from torch_ir.frontends.model_specs import parse_config_overrides, resolve_model
    from torch_ir.passes.registry import load_plugins
    from torch_ir.runtime.informative_weights import informative_weights
    from torch_ir.runtime.verifier import verify_ir_with_state_dict
    from torch_ir.runtime.weights import as_source

    overrides: dict[str, Any] = {}
    for text in args.config:
        overrides.update(parse_config_overrides(text))
    load_plugins(args.plugin)
    ir = read_ir(args.ir)
    if args.generate is not None and args.input:
        raise VerificationError("--generate makes its own prompt: drop --input (use --prompt-len)")
    if ir.is_program and args.generate is None:
        raise VerificationError(
            f"{args.ir} is a program with entries {', '.join(ir.entries)}: verify it with --generate N"
        )
    torch.manual_seed(args.seed)
    bundle = resolve_model(args.model, device="cpu", config_overrides=overrides)
    model = bundle.model.eval()
    redrawn = informative_weights(model, args.seed)
    made = (
        f"weights: the random initialization of {type(model).__name__} (seed {args.seed}), "
        f"{len(redrawn)} constant tensor(s) redrawn so that no norm or bias is an identity"
    )
    if args.weights:
        source = as_source(args.weights)
        state = model.state_dict()
        loaded = {k: source.load(k) for k in state if k in source}
        try:
            model.load_state_dict(loaded, strict=False)
        except RuntimeError as exc:
            raise WeightError(f"{args.weights} does not fit {type(model).__name__}: {exc}") from None
    else:
        source = as_source(model)
    if args.generate is not None:
        return _generate(ir, model, source, args, "" if args.weights else made)
    test_args, test_kwargs, ranges = _inputs(bundle, args.input, ir)
    _, report = verify_ir_with_state_dict(
        ir=ir,
        state_dict=source,
        original_model=model,
        test_inputs=test_args,
        test_kwargs=test_kwargs,
        rtol=args.rtol,
        atol=args.atol,
        device=args.device,
        fill_missing_from_model=args.fill_from_model,
        check_types=args.check_types,
        allow_side_effects=args.allow_side_effects,
        dry_run=True,
        trials=args.trials,
        seed=args.seed,
        input_ranges=ranges,
        example_inputs=True,
    )
    if not args.weights:
        report.notes.insert(0, made)
    _print(report, args.json)
    return 0 if report.passed else 1


def _print(report: Any, as_json: bool) -> None:
    if as_json:
        import json

        print(json.dumps(report.to_dict(), indent=1, default=str))
    else:
        print(report)


def _generate(ir: Any, model: Any, source: Any, args: argparse.Namespace, made: str) -> int:
    """``--generate N``: greedy decoding through the program against eager; 0 when every step matches."""
    from torch_ir.runtime.generation import verify_generation

    _, report = verify_generation(
        ir,
        model,
        steps=args.generate,
        weights=source,
        prompt_len=args.prompt_len,
        seed=args.seed,
        rtol=args.rtol,
        atol=args.atol,
        device=args.device,
        trials=args.trials,
        fill_missing_from_model=args.fill_from_model,
    )
    if made:
        report.notes.insert(0, made)
    _print(report, args.json)
    return 0 if report.passed else 1


def _inputs(
    bundle: Any, specs: list[str], ir: Any
) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, tuple[float, float]]]:
    """The example inputs (shapes and dtypes: their values are drawn per trial) and the known value ranges:
    the model's config's (for inputs the IR takes), then the ones ``--input`` gives. A named ``--input``
    for a parameter the IR takes by position (``ids:1x32:int64:0..50257``) is passed by position."""
    ranges: dict[str, tuple[float, float]] = {
        k: v for k, v in bundle.input_ranges.items() if k in {v.name for v in ir.inputs}
    }
    if not specs:
        return tuple(bundle.args), dict(bundle.kwargs), ranges
    import torch

    from torch_ir.frontends.inputs import build_inputs, parse_input_spec, positional_names

    parsed = [parse_input_spec(s) for s in specs]
    structure = ir.graph.input_structure or {}
    items = structure.get("items") or [{}]
    count = len(items[0].get("items", [])) if structure.get("kind") == "tuple" else 0
    names = positional_names(bundle.model, count) or []
    slots: list[Any] = [None] * len(names)
    unnamed = [s for s in parsed if s.name is None]
    for spec in parsed:
        if spec.name in names:
            slots[names.index(spec.name)] = spec
    for index, slot in enumerate(slots):
        if slot is None and unnamed:
            slots[index] = unnamed.pop(0)
    positional = [s for s in slots if s is not None] + unnamed
    keyword = [s for s in parsed if s.name is not None and s.name not in names]
    static = {k: v for k, v in bundle.kwargs.items() if not isinstance(v, torch.Tensor)}
    stripped = [type(s)(s.shape, s.dtype, None, s.low, s.high) for s in positional]
    args, kwargs, _ = build_inputs(stripped + keyword, (), device="cpu", model=bundle.model, extra_kwargs=static)
    all_names = positional_names(bundle.model, len(args)) or names
    named = [(all_names[i] if i < len(all_names) else None, s) for i, s in enumerate(positional)]
    for name, spec in named + [(s.name, s) for s in keyword]:
        if spec.range is None:
            continue
        if name is None:
            raise UsageError(f"--input {spec}: name the input to give it a range (NAME=SHAPE:DTYPE:LOW..HIGH)")
        ranges[name] = spec.range
    return args, kwargs, ranges


__all__ = ["register", "run"]
