"""Backends: emitters only. Mermaid and Markdown (jinja2 templates), and Model Explorer (``model_explorer``).

The file format lives in ``torch_ir.serde``; what runs an IR in ``torch_ir.runtime``; what is computed from
one in ``torch_ir.analysis``.
"""
