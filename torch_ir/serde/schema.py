"""The IR file format, described once: typed structs with a version.

Every field of a torch-ir JSON document is declared here, with its type, its bounds and what it means. The
reader decodes a document into these structs (strictly: a wrong type, an unknown field, an out-of-range
number is an error naming its JSON path), the writer encodes these structs, and the JSON Schema that ships
in the package and the field tables of docs/ir-format.md are generated from them
(``scripts/gen_format_docs.py``; a test checks that both are current). ``SCHEMA_VERSION`` is bumped on
every change; ``torch_ir.serde.upgraders`` reads every older version.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta

SCHEMA_VERSION = 6
"""The version of the format this release writes; files of a newer version are refused."""

VERSION_HISTORY: dict[int, str] = {
    1: "the first format",
    2: "`state_updates` per graph. Version 1 kept the new values of mutated buffers and inputs as extra "
    "trailing `outputs`, listed in `meta.mutations` (`{kind, target, output}`); the loader turns them into "
    "state updates and drops those outputs",
    3: "programs: `entries` (named graphs) over a top-level `weights` table, with declared `state`; "
    "single-graph files unchanged",
    4: "`regions` on nodes (control flow: cond, while_loop, scan, map)",
    5: "optional top-level `stages` and `pass_log` (files of versions 1 to 4 load with both empty)",
    6: "the module: `module` holds the one weight table, the declared state, the init graph and the "
    "`functions` (public entries and private bodies); a function's graph has no weights of its own. "
    "Empty and default fields are left out. Version 5 files (`graph`, or `entries` with per-entry derived "
    "weights and init graphs) load as modules with their weights and init graphs merged",
}
"""What each version changed, for docs/ir-format.md."""

FORMAT_NAME = "torch-ir"

MAX_DIM = 2**62
"""The largest dimension a file may declare: no tensor has more elements than an int64 can count."""

MAX_NAME = 1024
"""The longest name (value, node, weight, op) a file may use."""

DTYPE_NAMES = (
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "complex64",
    "complex128",
    "complex32",
)

Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
Count = Annotated[int, Meta(ge=0)]
Dim = Union[
    Annotated[int, Meta(ge=0, le=MAX_DIM)],
    Annotated[str, Meta(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_+\-*/%(), ]+$")],
]
DType = Literal[
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "complex64",
    "complex128",
    "complex32",
]
Reference = Annotated[str, Meta(min_length=2, max_length=MAX_NAME + 1, pattern=r"^[%@]")]
"""``"%name"`` for a value, ``"@name"`` for a weight."""


def doc(text: str) -> Meta:
    """A field's meaning, as the JSON Schema and the docs table show it."""
    return Meta(description=" ".join(text.split()))


class _Struct(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of the document structs: keyword fields, unknown fields refused, defaults left out when written."""


class Producer(_Struct, kw_only=True):
    """The torch-ir that wrote the file."""

    name: Annotated[str, doc("always `torch-ir`")]
    version: Annotated[str, doc("its version")]


class Stage(_Struct, kw_only=True):
    """One stage of extraction: how long it took and the memory it used."""

    stage: Annotated[Name, doc("the stage: `build`, `export`, `convert`, `pipeline`, `decompose`...")]
    seconds: Annotated[float, Meta(ge=0, le=1e9), doc("wall time")]
    rss_delta_bytes: Annotated[int, Meta(ge=-(2**62), le=2**62), doc("resident memory the stage added")] = 0
    peak_rss_bytes: Annotated[int, Meta(ge=0, le=2**62), doc("the process's peak resident memory at its end")] = 0


class PassLogEntry(_Struct, kw_only=True):
    """What one pass of a pipeline did."""

    pass_name: Annotated[Name, doc("the pass")] = msgspec.field(name="pass")
    entry: Annotated[Name | None, doc("in files of version 5: the program entry the row was about")] = None
    seconds: Annotated[
        Annotated[float, Meta(ge=0, le=1e9)] | None,
        doc("its time (only in a run record: `save(run_record=True)`, `--record-run`)"),
    ] = None
    modified: Annotated[bool | None, doc("whether it changed anything")] = None
    nodes_before: Annotated[Count | None, doc("nodes of every function before it")] = None
    nodes_after: Annotated[Count | None, doc("and after")] = None
    weights_before: Annotated[Count | None, doc("weights in the table before it")] = None
    weights_after: Annotated[Count | None, doc("and after")] = None


class TensorTypeDoc(_Struct, kw_only=True):
    """A value's type: a tensor (`shape` and `dtype`) or a scalar (`scalar`), never both."""

    shape: Annotated[
        Annotated[list[Dim], Meta(max_length=64)] | None,
        doc("dimensions: an integer, or a symbol (`seq`) or an expression of symbols (`2*seq`)"),
    ] = None
    dtype: Annotated[DType | None, doc("the element type")] = None
    scalar: Annotated[Literal["int", "float", "bool"] | None, doc("a Python scalar (symbolic sizes)")] = None


class ValueDoc(_Struct, kw_only=True):
    """A graph input or a node result."""

    name: Annotated[Name, doc("unique in its graph; letters, digits and `_ . - / #`")]
    type: Annotated[TensorTypeDoc | None, doc("null where a type is not known (before annotate-shapes)")] = None


class WeightDoc(_Struct, kw_only=True):
    """A parameter, buffer, constant or derived weight of the module's table."""

    name: Annotated[Name, doc("the state_dict key (`fc1.weight`), the constant's or the derived weight's name")]
    type: Annotated[TensorTypeDoc | None, doc("shape and dtype")] = None
    kind: Annotated[
        Literal["parameter", "buffer", "constant", "derived"],
        doc("`derived` weights are outputs of the init graph"),
    ]
    aliases: Annotated[list[Name], doc("other state_dict names of the same storage (tied weights)")] = []
    persistent: Annotated[bool, doc("whether it is in the model's state_dict")] = True
    data: Annotated[
        Any,
        doc(
            "the value of a constant known at extraction: nested lists up to 4,096 elements, else "
            '`{"encoding": "base64", "bytes": "..."}` (little-endian, row-major)'
        ),
    ] = None


class StateUpdateDoc(_Struct, kw_only=True):
    """After a call, `value` is the new content of the buffer, parameter or input `target`."""

    kind: Annotated[Literal["buffer", "parameter", "input"], doc("what is written")]
    target: Annotated[Name, doc("the weight's (or the input's) name")]
    value: Annotated[Reference, doc("a reference to the new content")]


class SymbolRangeDoc(_Struct, kw_only=True):
    """The range of a symbolic dimension."""

    min: Annotated[int, Meta(ge=-(2**62), le=2**62), doc("the smallest value")]
    max: Annotated[Annotated[int, Meta(ge=-(2**62), le=2**62)] | None, doc("the largest, null when unbounded")] = None


class StructureDoc(_Struct, kw_only=True):
    """How flat graph inputs or outputs nest into what `forward` takes or returns."""

    kind: Annotated[
        Literal["tuple", "list", "dict", "namedtuple", "custom", "input", "output", "constant"],
        doc("a container, or a leaf: a graph input or output by position, or a constant"),
    ]
    class_name: Annotated[Name | None, doc("the class of a `namedtuple` or `custom` container")] = msgspec.field(
        name="class", default=None
    )
    keys: Annotated[list[str | int] | None, doc("the keys of a `dict`, `namedtuple` or `custom` container")] = None
    items: Annotated[list[StructureDoc] | None, doc("the items of a container")] = None
    index: Annotated[
        Annotated[int, Meta(ge=0, le=2**31)] | None, doc("the position of an `input` or `output` leaf")
    ] = None
    value: Annotated[Any, doc("the value of a `constant` leaf")] = None


class NodeDoc(_Struct, kw_only=True):
    """An operation."""

    name: Annotated[Name, doc("unique among nodes; the first result's name when it has results")]
    op: Annotated[Name, doc("the ATen overload (`aten.linear.default`), a custom op, or `operator.mul`")]
    args: Annotated[
        list[Any],
        doc(
            "operands carrying values, in schema order: a reference (`%x`, `@w`), or a list of references "
            'and literals; a string literal is written `{"literal": "text"}`'
        ),
    ] = []
    attrs: Annotated[dict[str, Any], doc("every other schema argument by name, JSON-typed")] = {}
    outputs: Annotated[list[ValueDoc], doc("the results")] = []
    meta: Annotated[dict[str, Any], doc("`module_stack` (`[[path, class], ...]`) and `source`")] = {}
    regions: Annotated[list[GraphDoc], doc("the nested graphs of a control-flow op, in its contract's order")] = []


class GraphDoc(_Struct, kw_only=True):
    """A graph: a function's body, a region, or the init graph."""

    inputs: Annotated[list[ValueDoc], doc("the inputs, in order")] = []
    weights: Annotated[
        list[WeightDoc], doc("only in the init graph: the weights it reads (functions read the module's table)")
    ] = []
    nodes: Annotated[list[NodeDoc], doc("the operations in topological order")] = []
    outputs: Annotated[list[Reference], doc("the results")] = []
    state_updates: Annotated[list[StateUpdateDoc], doc("writes of model state, applied after a call")] = []
    input_structure: Annotated[StructureDoc | None, doc("how `inputs` map to `(args, kwargs)` of forward")] = None
    output_structure: Annotated[StructureDoc | None, doc("how `outputs` nest into what forward returns")] = None
    symbols: Annotated[dict[Name, SymbolRangeDoc], doc("symbolic dimensions and their ranges")] = {}
    meta: Annotated[dict[str, Any], doc("`model`, the `device` it was traced as, `unknown_constants`...")] = {}


class StateDoc(_Struct, kw_only=True):
    """A tensor of state the functions share (an LLM's KV cache)."""

    name: Annotated[Name, doc("a buffer of the weight table")]
    type: Annotated[TensorTypeDoc, doc("a static tensor type")]
    init: Annotated[Literal["zeros"], doc("how it starts before the first call")] = "zeros"


class FunctionDoc(_Struct, kw_only=True):
    """A named function: a public entry (`forward`, `prefill`, `decode`) or a private body calls use."""

    name: Annotated[
        Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=MAX_NAME)], doc("an identifier")
    ]
    public: Annotated[bool, doc("false for a private body")] = True
    graph: Annotated[GraphDoc, doc("its graph (no `weights`: it reads the module's table)")]


class ModuleDoc(_Struct, kw_only=True):
    """The module: one weight table, its init graph, the declared state and the functions."""

    weights: Annotated[list[WeightDoc], doc("the one weight table, in order")] = []
    state: Annotated[list[StateDoc], doc("the declared state")] = []
    init: Annotated[GraphDoc | None, doc("computations on weights only, run once when weights are bound")] = None
    functions: Annotated[list[FunctionDoc], Meta(min_length=1), doc("the functions, in order")]


class Document(_Struct, kw_only=True):
    """A torch-ir file."""

    format: Annotated[Literal["torch-ir"], doc("identifies the file")]
    schema_version: Annotated[int, Meta(ge=1), doc("the version of this format; bumped on every change")]
    producer: Annotated[Producer | None, doc("the torch-ir that wrote the file")] = None
    torch_version: Annotated[str | None, doc("the torch that traced the model")] = None
    model: Annotated[Name | None, doc("the model's name")] = None
    stages: Annotated[
        list[Stage] | None, doc("the run record (only with `run_record=True`): time and memory of each stage")
    ] = None
    pass_log: Annotated[list[PassLogEntry], doc("what each pass run on this IR did, in order")] = []
    module: Annotated[ModuleDoc, doc("the module")]


STRUCTS: tuple[type[msgspec.Struct], ...] = (
    Document,
    Producer,
    Stage,
    PassLogEntry,
    ModuleDoc,
    StateDoc,
    FunctionDoc,
    GraphDoc,
    WeightDoc,
    NodeDoc,
    ValueDoc,
    TensorTypeDoc,
    StateUpdateDoc,
    SymbolRangeDoc,
    StructureDoc,
)
"""Every struct of the document, in the order docs/ir-format.md describes them."""


__all__ = [
    "DTYPE_NAMES",
    "FORMAT_NAME",
    "MAX_DIM",
    "SCHEMA_VERSION",
    "STRUCTS",
    "VERSION_HISTORY",
    "Document",
    "FunctionDoc",
    "GraphDoc",
    "ModuleDoc",
    "NodeDoc",
    "PassLogEntry",
    "Producer",
    "Stage",
    "StateDoc",
    "StateUpdateDoc",
    "StructureDoc",
    "SymbolRangeDoc",
    "TensorTypeDoc",
    "ValueDoc",
    "WeightDoc",
]
