"""Backends: emitters only. JSON (save / load, with its schema), Mermaid and Markdown (jinja2 templates).

What runs an IR lives in ``torch_ir.runtime``; what is computed from one in ``torch_ir.analysis``. The old
module paths (``torch_ir.backends.interpreter``, ``.weights``, ``.verifier``, ``.statistics``) keep working.
"""
