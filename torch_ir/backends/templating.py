"""The jinja2 environment the Mermaid and Markdown backends render their templates with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jinja2


def load_template(name: str, filters: dict[str, Callable[..., Any]] | None = None) -> jinja2.Template:
    """The template ``templates/<name>`` of this package: no autoescaping (the outputs are not HTML), an
    undefined variable is an error, and ``filters`` are added to the environment."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("torch_ir.backends", "templates"),
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(filters or {})
    return env.get_template(name)
