"""Files Model Explorer opens without torch-ir: ``graphs.json`` and one node-data file per overlay.

``write_bundle`` is what ``torch-ir report IR --format model-explorer -o DIR`` writes. The graphs file is
a graph collection (``{"label", "graphs"}``), which Model Explorer's built-in JSON loader reads; each
overlay is a node-data file keyed by graph id. ``load_command`` gives the line that opens them::

    model-explorer DIR/graphs.json --node_data_paths=DIR/flops.json,DIR/bytes.json,...
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch_ir.backends.model_explorer.convert import ir_to_graphs
from torch_ir.backends.model_explorer.overlays import cost_overlays, verify_overlays
from torch_ir.backends.model_explorer.schema import ModelNodeData, node_data_to_dict
from torch_ir.ir.module import IR
from torch_ir.ir.run_record import paused_gc
from torch_ir.serde.files import atomic_write_text, check_output_folder_path, check_output_path

GRAPHS_FILE = "graphs.json"
"""The name of the graph collection file in the folder."""


def overlays_of(
    ir: IR, bindings: Mapping[str, int] | None = None, verify_report: Any = None, report_source: str = ""
) -> dict[str, ModelNodeData]:
    """The cost overlays of ``ir``, and the verify overlays when ``verify_report`` (parsed JSON) is given."""
    overlays = cost_overlays(ir, bindings)
    if verify_report is not None:
        overlays.update(verify_overlays(ir, verify_report, report_source or "the verify report"))
    return overlays


def to_json(data: Any) -> str:
    """Compact JSON that browsers parse (no NaN or Infinity)."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def bundle_files(
    ir: IR, *, bindings: Mapping[str, int] | None = None, verify_report: Any = None, report_source: str = ""
) -> dict[str, str]:
    """The files of the bundle as ``{file name: JSON text}``: ``graphs.json``, then ``<overlay>.json`` each."""
    with paused_gc():  # thousands of small dicts: full collections would cost more than the work
        overlays = overlays_of(ir, bindings, verify_report, report_source)
        files = {GRAPHS_FILE: to_json(ir_to_graphs(ir).to_dict())}
        files.update({f"{stem}.json": to_json(node_data_to_dict(data)) for stem, data in overlays.items()})
    return files


def write_bundle(
    ir: IR,
    folder: str | os.PathLike[str],
    *,
    bindings: Mapping[str, int] | None = None,
    verify_report: Any = None,
    report_source: str = "",
) -> list[Path]:
    """Write ``graphs.json`` and ``<overlay>.json`` for every overlay into ``folder``; return their paths.

    Each file is written atomically (a FIFO or device at a file's path is written into, as every output
    is); the folder is created when missing. A file in the folder's place, or a folder in a file's, is a
    ``SerializationError`` before anything is written.
    """
    target = Path(folder)
    check_output_folder_path(target)
    files = bundle_files(ir, bindings=bindings, verify_report=verify_report, report_source=report_source)
    paths = [target / name for name in files]
    for path in paths:  # a folder in a file's place is refused before any file is written
        check_output_path(path)
    for path, text in zip(paths, files.values()):
        atomic_write_text(path, text)
    return paths


def load_command(paths: list[Path]) -> str:
    """The ``model-explorer`` command line that opens the graphs with every node-data file."""
    graphs = [p for p in paths if p.name == GRAPHS_FILE]
    data = [str(p) for p in paths if p.name != GRAPHS_FILE]
    line = f"model-explorer {graphs[0] if graphs else GRAPHS_FILE}"
    return f"{line} --node_data_paths={','.join(data)}" if data else line


__all__ = ["GRAPHS_FILE", "bundle_files", "load_command", "overlays_of", "to_json", "write_bundle"]
