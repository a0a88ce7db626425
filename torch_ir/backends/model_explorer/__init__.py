"""Model Explorer for torch-ir: IRs as browsable graphs, with cost and verification overlays.

``ir_to_graphs`` (``convert.py``) turns an IR into Model Explorer graphs; ``overlays.py`` computes node data
(FLOPs, bytes, output size, live bytes, and the per-node error of a ``torch-ir verify --json`` report);
``bundle.py`` writes both as files that Model Explorer loads on its own. The adapter extension that lets
Model Explorer open IR files itself is ``main.py``, found by Model Explorer's extension loader as
``--extensions=torch_ir.backends.model_explorer``; it, and ``server.py`` (``torch-ir view``), need the
``[viz]`` extra (``ai-edge-model-explorer``); everything else works without it.
"""

from __future__ import annotations

ADAPTER_ID = "torch_ir"
"""The adapter's id in Model Explorer (``adapterId`` in a model source, ``extensionId`` in a command)."""

EXTENSION_MODULE = "torch_ir.backends.model_explorer"
"""What to pass to Model Explorer's ``--extensions`` (it imports ``<module>.main``)."""

__all__ = ["ADAPTER_ID", "EXTENSION_MODULE"]
