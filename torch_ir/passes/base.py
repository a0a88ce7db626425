"""The pass contract: ``Pass`` (a frozen dataclass), ``PassResult`` and ``PassContext``.

Declared like xDSL passes (options are typed dataclass fields), checked like onnx-ir passes
(``requires`` before, ``ensures`` after), returning like torch.fx passes (``PassResult(graph, modified)``).
A pass declares its ``scope`` and the pass manager walks the module for it (``torch_ir.passes.driver``):
no pass loops over functions, regions or the init graph itself.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch_ir.errors import PassError
from torch_ir.ir.graph import Graph
from torch_ir.ir.module import Module

__all__ = ["SCOPES", "Pass", "PassContext", "PassError", "PassOption", "PassResult"]


SCOPES = ("graph", "function", "module")
"""What a pass runs on (``Pass.scope``):

- ``graph``: every graph of the module, one at a time: the regions nested in each function (innermost
  first, each before the graph that owns it), the function's own graph, and after every function the init
  graph (then ``ctx.in_init`` is True).
- ``function``: each function's own graph (public and private), not its regions, not the init graph.
- ``module``: the whole ``Module``, once (``run`` gets the module).
"""


@dataclass(frozen=True)
class PassResult:
    """What a pass returns: the graph (or, for a module-scope pass, the module) it was given or a new one,
    and whether anything changed."""

    graph: Any
    modified: bool

    @property
    def module(self) -> Module:
        """The module a module-scope pass returned."""
        if not isinstance(self.graph, Module):
            raise PassError("this PassResult holds a graph, not a module")
        return self.graph


@dataclass
class PassContext:
    """What passes may read besides the graph.

    ``state_dict`` holds weight values when they are at hand (dedup-weights compares contents with it);
    ``logger`` and ``verbosity`` are for passes that explain what they do; ``passes_run`` lists the names of
    the passes that ran before the current one; ``extra`` is free for user passes. While the pass manager
    walks a module, ``module`` is that module, ``function`` the name of the function whose graph (or region)
    ``run`` was given, ``region`` the path of that region in it (``"cond_1/true/"``; '' for the function's
    own graph) and ``in_init`` whether it is the init graph.
    """

    state_dict: Mapping[str, Any] | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("torch_ir.passes"))
    verbosity: int = 0
    passes_run: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    module: Module | None = None
    function: str = ""
    region: str = ""
    in_init: bool = False

    @property
    def where(self) -> str:
        """Where the pass is now, for messages: ``function forward``, ``function f, region cond_1/true``,
        ``the init graph``."""
        if self.in_init:
            return "the init graph"
        text = f"function {self.function}" if self.function else "the graph"
        return f"{text}, region {self.region.rstrip('/')}" if self.region else text

    def log(self, message: str, level: int = 1) -> None:
        """Log ``message`` at INFO when ``verbosity >= level``, else at DEBUG."""
        self.logger.log(logging.INFO if self.verbosity >= level else logging.DEBUG, message)


@dataclass(frozen=True)
class PassOption:
    """One option of a pass, as the pipeline text and ``torch-ir passes`` show it."""

    name: str
    field: str
    type: Any
    type_text: str
    default: Any
    help: str = ""


@dataclass(frozen=True)
class Pass:
    """Base class of every pass: subclass it as a frozen dataclass and register it with ``@register_pass``.

    ``name`` is the pipeline name (``hoist-weights``), ``aliases`` other names for it (``dce``); dataclass
    fields are the options (``min_numel`` is written ``min-numel`` in pipeline text). ``scope`` says what
    ``run`` is given (``SCOPES``: each graph, each function, or the module). ``requires`` and ``ensures``
    may raise ``PassError`` when the graph (or module) does not meet the pass's pre- or postcondition.
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    in_place: ClassVar[bool] = True
    """The pass contract (as onnx-ir declares it): True when ``run`` changes the graph it is given and
    returns it; False for a functional pass, which leaves its input alone and returns a new graph. The
    pass manager checks the returned graph against this declaration."""

    uses_torch: ClassVar[bool] = True
    """Whether the pass needs torch (most do: shapes, op schemas). The pass manager imports torch before the
    first pass that does, so its timing does not include torch's import; a pass that never touches torch
    says False, and a pipeline of such passes runs without torch."""

    scope: ClassVar[str] = "graph"
    """What ``run`` is given: ``graph`` (every function graph, region and the init graph, one at a time),
    ``function`` (each function's graph) or ``module`` (the module, once); see ``SCOPES``."""

    regions: ClassVar[str] = ""
    """How the pass treats the regions of control-flow ops (shown by ``torch-ir passes``); '' when it does
    not say. The pass manager hands a ``graph``-scope pass every region; a ``function``-scope pass none."""

    def requires(self, graph: Any) -> None:
        """Check the precondition of the pass (raise ``PassError``); by default nothing."""

    def ensures(self, graph: Any) -> None:
        """Check the postcondition of the pass (raise ``PassError``); by default nothing."""

    def run(self, graph: Any, ctx: PassContext) -> PassResult:
        """Transform ``graph`` (a ``Graph``, or the ``Module`` for a module-scope pass), in place or into a
        new one, and say whether anything changed."""
        raise NotImplementedError(f"pass {self.name} does not implement run()")

    def __call__(self, target: Graph | Module, ctx: PassContext | None = None) -> PassResult:
        """The whole contract on ``target`` (a module, or a graph with its regions and init graph), walked
        as the pass manager walks it; the result holds the (new) graph or module and whether it changed."""
        from torch_ir.passes.driver import run_pass

        ctx = ctx if ctx is not None else PassContext()
        module = target if isinstance(target, Module) else Module(target)
        modified = run_pass(self, module, ctx)
        return PassResult(module if isinstance(target, Module) else module.graph, modified)

    @classmethod
    def summary(cls) -> str:
        """The first line of the docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.split("\n", 1)[0] if doc else ""

    @classmethod
    def options(cls) -> tuple[PassOption, ...]:
        """The options of the pass: dataclass fields with their resolved types and defaults."""
        hints = typing.get_type_hints(cls)
        docs = _field_docs(cls)  # type: ignore[arg-type]
        out = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = dataclasses.MISSING
            hint = hints.get(f.name, Any)
            out.append(
                PassOption(
                    f.name.replace("_", "-"),
                    f.name,
                    hint,
                    type_text(hint),
                    default,
                    str(f.metadata.get("help", docs.get(f.name, ""))),
                )
            )
        return tuple(out)

    def option_values(self) -> dict[str, Any]:
        """The options that differ from their defaults, by pipeline name (``min-numel``)."""
        out = {}
        for opt in self.options():
            value = getattr(self, opt.field)
            if opt.default is dataclasses.MISSING or value != opt.default:
                out[opt.name] = value
        return out


def check_contract(p: Pass, graph: Any, result: PassResult) -> None:
    """Raise ``PassError`` when what a pass returned contradicts its ``in_place`` declaration or its scope."""
    what = "module" if p.scope == "module" else "graph"
    expected = Module if p.scope == "module" else Graph
    if not isinstance(result.graph, expected):
        raise PassError(f"pass {p.name} (scope {p.scope}) returned a {type(result.graph).__name__}, not a {what}")
    if p.in_place and result.graph is not graph:
        raise PassError(
            f"pass {p.name} is declared in place (in_place = True) but returned a new {what}; "
            f"return the {what} it was given, or declare in_place: ClassVar[bool] = False"
        )
    if not p.in_place and result.graph is graph:
        raise PassError(
            f"pass {p.name} is declared functional (in_place = False) but returned the {what} it was given; "
            f"return a new {what} ({what}.clone()), or declare it in place"
        )


def type_text(hint: Any) -> str:
    """A short, readable spelling of a type hint (``int``, ``tuple[str, ...]``, ``int | None``)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        return " | ".join(type_text(a) for a in args)
    if origin in (tuple, list):
        inner = ", ".join("..." if a is Ellipsis else type_text(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    if hint is type(None):
        return "None"
    return getattr(hint, "__name__", str(hint))


@functools.cache
def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string right after a field) of ``cls`` and its bases, read from the source."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in itertools.pairwise(body):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs
