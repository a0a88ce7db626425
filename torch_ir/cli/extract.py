"""``torch-ir extract SPEC``: build a model from a spec, extract its IR on meta, run a pipeline, write it.

Prints a summary (nodes, weights, parameters, per-stage time and memory) on stdout; progress goes to
stderr on a terminal only. The IR file is the same bytes for the same model, options and versions;
``--record-run`` adds the stage and pass timings and memory figures to it. Every output path is checked
before the model is built: a folder, or two formats that would land in one file, is an error.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch_ir.cli import UsageError
from torch_ir.cli.options import VERBOSE_HELP, pipeline_text, positive_int, sequence_length
from torch_ir.cli.streams import STDIO, write_ir
from torch_ir.errors import ModelSpecError

if TYPE_CHECKING:
    import torch

FORMATS = ("json", "mermaid", "markdown")
"""What ``--format`` can write: the JSON IR (always), OUT.mmd (a program: OUT.ENTRY.mmd) and OUT.md."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``extract`` subcommand."""
    parser = subparsers.add_parser(
        "extract",
        help="extract the IR of a model (zoo:NAME, hf:MODEL, module:factory, file.py:Class) on meta",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  torch-ir extract zoo:gpt -o gpt.json\n"
            "  torch-ir extract hf:llama-2-7b --config num_hidden_layers=8\n"
            "  torch-ir extract hf:llama-2-70b --functions -o llama70b.json\n"
            "  torch-ir extract my_model.py:Net --input 2x3x224x224:float32 --dynamic 0=batch:1..64\n"
            "  torch-ir extract hf:gpt2 --input 1x128:int64 --dynamic input_ids.1=seq:2..1024\n"
            "  torch-ir extract zoo:gpt -o - | torch-ir opt - -p canonicalize -o gpt.opt.json\n"
            "\n"
            "A dynamic dim needs an example size of at least 2 (torch.export specializes 0 and 1).\n"
            "With -o -, the JSON goes to stdout and the summary to stderr."
        ),
    )
    parser.add_argument(
        "spec",
        nargs="?",
        help="model spec: zoo:NAME, hf:MODEL_TYPE|PRESET, package.module:factory, path/to/file.py:ClassOrFactory",
    )
    parser.add_argument(
        "-o",
        "--output",
        help="the JSON file to write (default: <model>.json here; a folder is an error); '-' writes it to stdout",
    )
    parser.add_argument(
        "--record-run",
        action="store_true",
        help="also record the time and memory of each stage and pass in the file (it then differs from run to run)",
    )
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="[NAME=]SHAPE[:DTYPE]",
        help="an example input, e.g. 1x128:int64 or attention_mask=1x128:int64 (repeatable)",
    )
    parser.add_argument(
        "--dynamic",
        action="append",
        default=[],
        metavar="[INPUT.]AXIS=NAME[:MIN..MAX]",
        help="a dynamic dim, e.g. 0=batch:1..64 (first input) or input_ids.1=seq:2..2048",
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="K=V,...",
        help="config overrides (hf: config keys, or factory keyword arguments)",
    )
    parser.add_argument(
        "-p", "--pipeline", default="default", type=pipeline_text, help="pipeline text or file ('default', 'none')"
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE so the passes it defines can be used (repeatable)",
    )
    parser.add_argument("--decompose", choices=("core_aten",), help="decompose to core ATen after export")
    parser.add_argument(
        "--functions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=(
            "trace each distinct repeated block (the layers of a module list) once and call it per layer; "
            "'-p default' is then the 'functions' pipeline; with --kv-cache too (the 'inline' pass turns calls "
            "back into the flat IR)"
        ),
    )
    parser.add_argument("--format", default="json", help=f"comma-separated outputs: {', '.join(FORMATS)}")
    parser.add_argument("--device", default="meta", help="device to build the model on (default: meta)")
    parser.add_argument(
        "--trace-device",
        default="cpu",
        help="device the trace presents the model as, weight-free (default: cpu; 'meta' traces on meta as is)",
    )
    llm = parser.add_argument_group("LLM programs (prefill + decode with a KV cache)")
    llm.add_argument(
        "--kv-cache",
        choices=("static",),
        help="extract a transformers causal LM as a prefill + decode program over a KV cache of this kind",
    )
    llm.add_argument("--max-cache-len", type=sequence_length, help="positions the KV cache holds (with --kv-cache)")
    llm.add_argument(
        "--max-prefill-len", type=sequence_length, help="longest prompt prefill takes (default: --max-cache-len)"
    )
    llm.add_argument(
        "--batch-size", type=positive_int, default=1, help="sequences per call (with --kv-cache; default 1)"
    )
    parser.add_argument("--list-zoo", action="store_true", help="list the built-in models and hf: presets, then exit")
    parser.add_argument("--list-presets", action="store_true", help="list the hf: presets, then exit")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", help=f"progress lines even when not a terminal; {VERBOSE_HELP}"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``torch-ir extract``."""
    if args.list_zoo or args.list_presets:
        if args.spec:
            raise UsageError(f"--list-zoo/--list-presets list models and exit; drop the model spec {args.spec!r}")
        print(list_models(zoo=args.list_zoo, presets=True))
        return 0
    if not args.spec:
        raise UsageError(
            "no model spec: give e.g. zoo:gpt, hf:llama-2-7b or my_model.py:Net "
            "(torch-ir extract --list-zoo lists the built-in ones)"
        )
    formats = _formats(args.format)
    to_stdout = args.output == STDIO
    if to_stdout and formats != {"json"}:
        raise UsageError("-o - writes the JSON IR to stdout; --format mermaid/markdown need a file name")
    if args.output and not to_stdout:
        from torch_ir.serde.files import check_distinct_outputs, check_output_path

        check_output_path(args.output)  # before Path() drops the separator of "out/"
        check_distinct_outputs(output_paths(Path(args.output), formats, args.kv_cache is not None).values())
    from torch_ir.frontends.model_specs import parse_config_overrides, resolve_model
    from torch_ir.ir.module import IR
    from torch_ir.ir.run_record import StageReport
    from torch_ir.progress import Progress, layer_progress

    overrides: dict[str, Any] = {}
    for text in args.config:
        overrides.update(parse_config_overrides(text))
    if args.plugin:
        from torch_ir.passes.registry import load_plugins

        load_plugins(args.plugin)
    _check_llm_flags(args)
    check_build_device(args.device)
    progress = Progress(verbose=args.verbose, quiet=args.quiet)
    stages = StageReport()
    with progress.stage("build", stages, args.spec):
        bundle = resolve_model(args.spec, device=args.device, config_overrides=overrides)
    functions = bool(args.functions)
    pipeline = "functions" if functions and args.pipeline == "default" else args.pipeline
    if args.kv_cache:
        from torch_ir.extraction import extract_llm

        manager = _pass_manager(pipeline, progress)
        with progress.stage("export", None, "(prefill + decode)"), layer_progress(progress, bundle.model):
            ir = extract_llm(
                bundle.model,
                max_cache_len=args.max_cache_len,
                batch_size=args.batch_size,
                max_prefill_len=args.max_prefill_len,
                cache=args.kv_cache,
                pipeline=manager if manager is not None else "none",
                device=args.trace_device,
                name=bundle.name,
                functions=functions,
            )
        ir.stages.stages[:0] = stages.stages
        return _write(ir, args, formats, progress, bundle.name)
    model_args, model_kwargs, dynamic_shapes = example_inputs(
        bundle, _items(args.input), _items(args.dynamic), args.device
    )
    manager = _pass_manager(pipeline, progress)
    if functions:
        ir = _capture_functions(bundle, model_args, model_kwargs, dynamic_shapes, args, progress)
        ir.stages.stages[:0] = stages.stages
    else:
        from torch_ir.frontends.torch_export import convert_program, export_program

        with progress.stage("export", None, "(torch.export)"), layer_progress(progress, bundle.model):
            program = export_program(
                bundle.model,
                model_args,
                example_kwargs=model_kwargs,
                dynamic_shapes=dynamic_shapes,
                decompose=args.decompose,
                stages=stages,
                device=args.trace_device,
            )
        with progress.stage("convert", stages):
            graph = convert_program(program, bundle.model, dynamic_shapes=dynamic_shapes)
            graph.meta["model"] = bundle.name
        del program
        ir = IR(graph, stages)
    if manager is not None:
        with progress.stage("pipeline", ir.stages, ticker=False):
            manager.run(ir)
    return _write(ir, args, formats, progress, bundle.name)


def _capture_functions(
    bundle: Any, model_args: Any, model_kwargs: Any, dynamic_shapes: Any, args: argparse.Namespace, progress: Any
) -> Any:
    """The model with each distinct repeated block traced once (``--functions``), no passes run."""
    from torch_ir.frontends.functions import capture_functions
    from torch_ir.progress import layer_progress

    with progress.stage("export", None, "(blocks traced once)"), layer_progress(progress, bundle.model):
        return capture_functions(
            bundle.model,
            model_args,
            example_kwargs=model_kwargs,
            dynamic_shapes=dynamic_shapes,
            name=bundle.name,
            device=args.trace_device,
        )


def _check_llm_flags(args: argparse.Namespace) -> None:
    """``--kv-cache`` and its flags go together, and without the flags of a single-graph extraction."""
    if args.kv_cache:
        if args.max_cache_len is None:
            raise UsageError("--kv-cache needs --max-cache-len N (the positions the KV cache holds)")
        clashing = [flag for flag, given in (("--input", args.input), ("--dynamic", args.dynamic)) if given]
        if args.decompose:
            clashing.append("--decompose")
        if clashing:
            raise UsageError(f"--kv-cache builds its own prefill and decode inputs: drop {', '.join(clashing)}")
    elif args.max_cache_len is not None or args.max_prefill_len is not None:
        raise UsageError("--max-cache-len and --max-prefill-len need --kv-cache static")
    if args.functions and args.decompose:
        raise UsageError(
            "--functions traces blocks as torch.export gives them: drop --decompose (or use --no-functions)"
        )


def output_paths(output: Path, formats: set[str], program: bool, entries: tuple[str, ...] = ()) -> dict[str, Path]:
    """Where each output goes, by a key (``json``, ``mermaid`` or ``mermaid:ENTRY``, ``markdown``): the JSON at
    ``output``, the others beside it with their own suffix. A program's entries are known only after the
    extraction; before it, ``prefill`` and ``decode`` (what ``--kv-cache`` makes) stand for them."""
    paths = {"json": output}
    if "mermaid" in formats:
        if program:
            for entry in entries or ("prefill", "decode"):
                paths[f"mermaid:{entry}"] = output.with_suffix(f".{entry}.mmd")
        else:
            paths["mermaid"] = output.with_suffix(".mmd")
    if "markdown" in formats:
        paths["markdown"] = output.with_suffix(".md")
    return paths


def _write(ir: Any, args: argparse.Namespace, formats: set[str], progress: Any, name: str) -> int:
    """Write the IR (and the other formats asked for) atomically; print the summary unless quiet."""
    from torch_ir.serde.files import check_distinct_outputs

    stages = ir.stages
    to_stdout = args.output == STDIO
    output = Path(args.output) if args.output and not to_stdout else Path(f"{_file_stem(name)}.json")
    paths = output_paths(output, formats, ir.is_program, tuple(ir.entries))
    if to_stdout:
        del paths["json"]
    check_distinct_outputs(paths.values())
    with progress.stage("write", stages, "stdout" if to_stdout else str(output)):
        if to_stdout:
            write_ir(ir, STDIO, run_record=args.record_run)
        else:
            ir.save(output, run_record=args.record_run)
        if "mermaid" in formats:
            from torch_ir.backends.mermaid import render_mermaid
            from torch_ir.serde.files import atomic_write_text

            for key, path in paths.items():  # a program: one diagram per entry
                if key.startswith("mermaid"):
                    entry = key.partition(":")[2]
                    atomic_write_text(path, render_mermaid(ir.entry(entry) if entry else ir))
        if "markdown" in formats:
            from torch_ir.backends.markdown import write_report

            write_report(ir, paths["markdown"])
    if not args.quiet:
        summary = sys.stderr if to_stdout else sys.stdout
        print(ir.summary(), file=summary)
        if paths:
            print("wrote       " + ", ".join(f"{p} ({_size(p)})" for p in paths.values()), file=summary)
    return 0


def check_build_device(device: str) -> None:
    """Refuse a ``--device`` torch does not know, or one this machine or torch build cannot allocate on,
    before the model is built (``cuda`` on a CPU-only torch)."""
    import torch

    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        reason = str(exc).split(":")[0]
        raise UsageError(f"--device {device!r}: not a device torch knows ({reason}); use 'meta' or 'cpu'") from None
    if target.type in ("cpu", "meta"):
        return
    try:
        torch.empty(0, device=target)
    except Exception as exc:  # torch raises AssertionError, RuntimeError... for a missing backend
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"--device {device}: not available here ({reason}); build on 'meta' (the default, no memory) or 'cpu'"
        ) from exc


def example_inputs(
    bundle: Any, inputs: list[str], dynamic: list[str], device: str
) -> tuple[tuple[Any, ...], dict[str, Any], Any]:
    """``(args, kwargs, dynamic_shapes)``: from ``--input`` when given (keeping the bundle's non-tensor
    kwargs such as ``use_cache=False``), else the bundle's own example inputs."""
    import torch

    from torch_ir.frontends.inputs import build_inputs, dynamic_shapes_for

    if inputs:
        static = {k: v for k, v in bundle.kwargs.items() if not isinstance(v, torch.Tensor)}
        args, kwargs, shapes = build_inputs(inputs, dynamic, device=device, model=bundle.model, extra_kwargs=static)
    else:
        args, kwargs = tuple(bundle.args), dict(bundle.kwargs)
        shapes = dynamic_shapes_for(bundle.model, args, kwargs, dynamic) if dynamic else bundle.dynamic_shapes
    if not args and not kwargs:
        required = _required_parameters(bundle.model)
        if required:
            raise ModelSpecError(
                f"model spec {bundle.spec!r} gives no example inputs and forward() needs {', '.join(required)}: "
                "pass --input SHAPE:DTYPE for each (e.g. --input 1x3x224x224:float32), or return "
                "(model, args) from the factory"
            )
    return args, kwargs, shapes


def list_models(zoo: bool = True, presets: bool = True) -> str:
    """The built-in models and the hf: presets, one per line."""
    lines: list[str] = []
    if zoo:
        from torch_ir.zoo import ZOO

        lines.append("built-in models (zoo:NAME):")
        lines.extend(f"  zoo:{e.name:<16} {e.description}" for e in ZOO.values())
    if presets:
        from torch_ir.frontends.model_specs import PRESETS

        lines.append("transformers presets (hf:NAME; or hf:MODEL_TYPE with --config k=v,...; needs torch-ir[hf]):")
        for name, preset in PRESETS.items():
            shape = ", ".join(f"{k}={v}" for k, v in preset.items() if k != "model_type")
            lines.append(f"  hf:{name:<17} {preset['model_type']}: {shape}")
    return "\n".join(lines)


def _pass_manager(pipeline: str, progress: Any) -> Any:
    if pipeline is None or pipeline.strip() in ("", "none"):
        return None
    from torch_ir.passes.manager import PassManager

    instrumentation = progress.instrumentation()
    return PassManager(pipeline, [instrumentation] if instrumentation is not None else [])


def _items(values: list[str]) -> list[str]:
    return [item for value in values for item in value.split(",") if item.strip()]


def _formats(text: str) -> set[str]:
    formats = {f.strip() for f in text.split(",") if f.strip()}
    unknown = sorted(formats - set(FORMATS))
    if unknown:
        raise UsageError(f"--format: unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    return formats


def _required_parameters(model: torch.nn.Module) -> list[str]:
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _file_stem(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "model"


def _size(path: Path) -> str:
    from torch_ir.analysis.statistics import format_bytes

    try:
        return format_bytes(path.stat().st_size)
    except OSError:
        return "?"


__all__ = ["FORMATS", "check_build_device", "example_inputs", "list_models", "output_paths", "register", "run"]
