"""The pass registry: name -> ``Pass`` class, user plugins, and the ``torch_ir.passes`` entry points."""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Iterable

from torch_ir.errors import PassError, PipelineSpecError
from torch_ir.passes.base import Pass

ENTRY_POINT_GROUP = "torch_ir.passes"

BUILTIN_MODULES = (
    "annotate_shapes",
    "canonicalize",
    "cse",
    "dedup_weights",
    "hoist_weights",
    "eliminate_dead_nodes",
    "outline_repeated_blocks",
    "inline",
)

_PASSES: dict[str, type[Pass]] = {}
_ALIASES: dict[str, str] = {}
_state = {"builtins": False, "entry_points": False}


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make ``cls`` usable by its ``name`` (and ``aliases``) in pipelines.

    A name already taken by another class is an error; registering the same class again (a module
    reloaded) replaces it.
    """
    if not (isinstance(cls, type) and issubclass(cls, Pass)):
        raise PassError(f"@register_pass expects a subclass of torch_ir.Pass, got {cls!r}")
    if not cls.name:
        raise PassError(f"pass class {cls.__qualname__} has no name: set name: ClassVar[str] = 'my-pass'")
    for name in (cls.name, *cls.aliases):
        owner = _PASSES.get(_ALIASES.get(name, name))
        if owner is not None and not _same_class(owner, cls):
            raise PassError(
                f"pass name {name!r} of {cls.__module__}.{cls.__qualname__} is already registered by "
                f"{owner.__module__}.{owner.__qualname__}; choose another name"
            )
    _PASSES[cls.name] = cls
    for alias in cls.aliases:
        _ALIASES[alias] = cls.name
    return cls


def _same_class(a: type, b: type) -> bool:
    return a is b or (a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__)


def unregister_pass(name: str) -> None:
    """Remove a pass (and its aliases) from the registry; mostly for tests."""
    cls = _PASSES.pop(_ALIASES.get(name, name), None)
    if cls is not None:
        for alias in cls.aliases:
            _ALIASES.pop(alias, None)


def load_builtins() -> None:
    """Import the built-in passes (they register themselves)."""
    if _state["builtins"]:
        return
    _state["builtins"] = True
    for module in BUILTIN_MODULES:
        importlib.import_module(f"torch_ir.passes.{module}")


def load_plugins(names: Iterable[str]) -> None:
    """Import each module in ``names`` so the passes it defines register; a failed import is an error.

    A module that is not importable from ``sys.path`` is looked up from the current directory too (as
    ``python -m`` does), so ``--plugin examples.passes.gqa_attention`` works from a checkout without
    PYTHONPATH.
    """
    for name in names:
        try:
            _import_plugin(name)
        except Exception as exc:  # any import failure becomes one clear error
            raise PipelineSpecError(
                f"plugin {name!r} could not be imported: {type(exc).__name__}: {exc}. "
                "Check that the module is on PYTHONPATH (or under the current directory) and imports without errors"
            ) from exc


def _import_plugin(name: str) -> None:
    try:
        importlib.import_module(name)
        return
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        cwd = os.getcwd()
        if not (name == missing or name.startswith(missing + ".")) or cwd in sys.path or "" in sys.path:
            raise  # the plugin itself imports something missing, or the current directory was searched
    sys.path.append(cwd)
    importlib.invalidate_caches()
    importlib.import_module(name)


def load_entry_points() -> None:
    """Load the passes advertised under the ``torch_ir.passes`` entry-point group (once)."""
    if _state["entry_points"]:
        return
    _state["entry_points"] = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin package must say which one it is
            raise PipelineSpecError(f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP}) failed: {exc}") from exc
        if isinstance(obj, type) and issubclass(obj, Pass) and obj.name not in _PASSES:
            register_pass(obj)


def get_pass(name: str) -> type[Pass]:
    """The pass class called ``name`` (or an alias); unknown names raise ``PipelineSpecError``."""
    load_builtins()
    key = _ALIASES.get(name, name)
    if key not in _PASSES:
        load_entry_points()
        key = _ALIASES.get(name, name)
    if key not in _PASSES:
        known = sorted([*_PASSES, *_ALIASES])
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise PipelineSpecError(
            f"unknown pass {name!r}{hint} (known passes: {', '.join(sorted(_PASSES))}; "
            "load your own with plugins / --plugin)"
        )
    return _PASSES[key]


def all_passes() -> dict[str, type[Pass]]:
    """Every registered pass by name (built-ins and entry points loaded)."""
    load_builtins()
    load_entry_points()
    return dict(sorted(_PASSES.items()))


__all__ = [
    "all_passes",
    "get_pass",
    "load_builtins",
    "load_entry_points",
    "load_plugins",
    "register_pass",
]
