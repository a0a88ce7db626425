"""The text form of a graph, in the spirit of MLIR: a printer, and a parser so tests can write graphs.

```
graph(%x: f32[1,16]) {
  weight @fc1.weight : f32[32,16] parameter
  weight @fc1.bias : f32[32] parameter
  %linear = aten.linear.default(%x, @fc1.weight, @fc1.bias) : (f32[1,16], f32[32,16], f32[32]) -> f32[1,32]
  %a, %b = aten.split.Tensor(%linear) {split_size=16, dim=1} : (f32[1,32]) -> (f32[1,16], f32[1,16])
  return %a, %b
}
```

Operands are values (``%x``), weights (``@w``) or lists of values and JSON literals (``[%a, None, 3]``);
attributes are ``{name=<JSON>}``; ``update @buf = %v`` (or ``update %input = %v``) says that after a call
``%v`` is the new content of that buffer, parameter or input (a state update); a node whose name differs
from its first result's ends in ``loc(name)``; a node line may end in ``meta {...}``, the node's metadata as
JSON (module path, source line: read, not printed). A region op (``higher_order.cond`` ...) is followed by
``regions { true: graph(...) {...} ... }``: its nested graphs, each named as its op's contract names it
(``torch_ir.ir.regions``), value names scoped to the region.
``print_graph(parse_graph(text))`` gives ``text`` back for any text the printer wrote.

A module prints as ``module { weight ... state ... init graph() {...} func NAME graph(...) {...} }``
(``print_module``, ``parse_module``): its one weight table, declared state and init graph once, then each
function, ``func private NAME`` for a body that ``func.call`` nodes use.

With ``metadata=True`` the printer also writes what the JSON file format holds beyond the computation, so
that a file in the text form reads back into an equal graph or module: ``meta {...}`` (the graph's metadata: model
name, device), ``input_structure {...}`` and ``output_structure {...}`` (how a call's arguments and
results map to the flat inputs and outputs) after the ``graph(...) {`` line, and each node's metadata
(module path, source line) as a ``meta {...}`` suffix of its line. The parser reads both forms.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from torch_ir.errors import IRError, TextParseError
from torch_ir.ir.graph import NAME_PATTERN, Graph, Node, Value, Weight, WeightTable
from torch_ir.ir.module import Module, StateSpec
from torch_ir.ir.regions import REGION_OPS, check_region_op, region_name
from torch_ir.ir.types import SHORT_DTYPES, ScalarType, SymbolRange, TensorType, ValueType

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-/#]+")


# ---------------------------------------------------------------------- printer


def print_graph(graph: Graph, indent: str = "", *, weights: bool = True, metadata: bool = False) -> str:
    """The text form of ``graph`` (with its weights and init graph, nested, unless ``weights`` is False:
    the functions of a module leave them to the module); ``metadata`` as in the module docstring."""
    lines: list[str] = []
    params = ", ".join(f"{_ref('%', v.name)}: {format_type(v.type)}" for v in graph.inputs)
    lines.append(f"{indent}graph({params}) {{")
    inner = indent + "  "
    if metadata:
        for key, value in (
            ("meta", graph.meta),
            ("input_structure", graph.input_structure),
            ("output_structure", graph.output_structure),
        ):
            if value:
                lines.append(f"{inner}{key} {_json(value)}")
    for name, rng in graph.symbols.items():
        lines.append(f"{inner}symbol {name} : {rng}")
    if weights:
        for weight in graph.weights.values():
            lines.append(inner + format_weight(weight))
        if graph.init is not None:
            lines.append(f"{inner}init")
            lines.append(print_graph(graph.init, inner, metadata=metadata))
    for node in graph.nodes:
        lines.append(inner + format_node(node))
        if metadata and node.meta:
            lines[-1] += f" meta {_json(node.meta)}"
        if node.regions:
            lines[-1] += " " + print_regions(node, inner, metadata=metadata)
    for update in graph.state_updates:
        lines.append(f"{inner}update {_ref(update.target_ref[0], update.target)} = {_value_ref(update.value)}")
    lines.append(f"{inner}return {', '.join(_value_ref(v) for v in graph.outputs)}".rstrip())
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def print_module(module: Module, *, metadata: bool = False) -> str:
    """The text form of a module: its weight table, declared state and init graph once, then each function
    (``func NAME graph(...)``, ``func private NAME graph(...)``) without weights of its own; ``metadata``
    as in the module docstring."""
    lines = ["module {"]
    for weight in module.weights.values():
        lines.append("  " + format_weight(weight))
    for spec in module.state.values():
        lines.append(f"  state {_ref('@', spec.name)} : {format_type(spec.type)} {spec.init}")
    if module.init is not None:
        lines.append("  init " + print_graph(module.init, "  ", metadata=metadata).lstrip())
    for name, function in module.functions.items():
        visibility = "" if function.public else "private "
        text = print_graph(function.graph, "  ", weights=False, metadata=metadata)
        lines.append(f"  func {visibility}{name} " + text.lstrip())
    lines.append("}")
    return "\n".join(lines)


def print_regions(node: Node, indent: str, *, metadata: bool = False) -> str:
    """The ``regions { true: graph(...) {...} ... }`` block that follows a region op's line."""
    lines = ["regions {"]
    inner = indent + "  "
    for index, region in enumerate(node.regions):
        text = print_graph(region, inner, metadata=metadata)
        lines.append(f"{inner}{region_name(node.op_type, index)}: {text[len(inner) :]}")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def format_type(type: ValueType | None) -> str:
    """``f32[1,16]``, ``int``, or ``?`` for an unknown type."""
    return "?" if type is None else str(type)


def format_weight(weight: Weight) -> str:
    """One ``weight @name : type kind ...`` line."""
    text = f"weight {_ref('@', weight.name)} : {format_type(weight.type)} {weight.kind}"
    if not weight.persistent:
        text += " non-persistent"
    if weight.aliases:
        text += " aliases(" + ", ".join(_ref("@", a) for a in weight.aliases) + ")"
    if weight.data is not None:
        text += " data=" + _json(weight.data)
    return text


def format_node(node: Node) -> str:
    """One node line: results, op, operands, attributes, signature."""
    results = ", ".join(_value_ref(v) for v in node.outputs)
    prefix = f"{results} = " if results else ""
    args = ", ".join(_format_arg(a) for a in node.args)
    attrs = ""
    if node.attrs:
        attrs = " {" + ", ".join(f"{k}={_json(v)}" for k, v in node.attrs.items()) + "}"
    in_types = ", ".join(format_type(v.type) for v in node.inputs)
    if len(node.outputs) == 1:
        out_types = format_type(node.outputs[0].type)
    else:
        out_types = "(" + ", ".join(format_type(v.type) for v in node.outputs) + ")"
    text = f"{prefix}{node.op_type}({args}){attrs} : ({in_types}) -> {out_types}"
    if not node.outputs or node.outputs[0].name != node.name:
        text += f" loc({_quote(node.name)})"
    return text


def _format_arg(arg: Any) -> str:
    if isinstance(arg, Value):
        return _value_ref(arg)
    if isinstance(arg, list):
        return "[" + ", ".join(_format_arg(a) for a in arg) + "]"
    return _json(arg)


def _value_ref(value: Value) -> str:
    return _ref("@" if isinstance(value, Weight) else "%", value.name)


def _ref(sigil: str, name: str) -> str:
    return sigil + _quote(name)


def _quote(name: str) -> str:
    return name if _PLAIN_NAME.fullmatch(name) else json.dumps(name)


def _json(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)  # NaN / Infinity / -Infinity, read back by the parser
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


# ----------------------------------------------------------------------- parser


def parse_graph(text: str) -> Graph:
    """Parse the text form into a ``Graph``; errors are ``TextParseError`` with line and column."""
    parser = _Parser(text)
    graph = parser.parse_graph()
    parser.skip_space()
    if not parser.at_end():
        parser.fail("unexpected text after the graph")
    return graph


def parse_module(text: str) -> Module:
    """Parse the text form of a module (``module { weight ... state ... init graph() {...} func NAME graph(...)
    {...} }``) into a ``Module``. The ``program { state ... entry NAME graph(...) {...} }`` form of earlier
    releases (each entry with its own weights) and a bare ``graph(...) {...}`` are read too."""
    parser = _Parser(text)
    parser.skip_space()
    if parser.peek("graph"):
        module = Module(parse_graph(text))
        return module
    legacy = parser.accept("program")
    if not legacy:
        parser.expect("module")
    parser.expect("{")
    module = Module()
    table = module.table
    state: dict[str, StateSpec] = {}
    while True:
        parser.skip_space()
        if parser.accept("}"):
            break
        if parser.at_end():
            parser.fail("missing '}' at the end of the module")
        if parser.accept("state "):
            parser.expect("@")
            name = parser.word("state name")
            parser.expect(":")
            type_ = parser.parse_type()
            init = parser.word("state init")
            if not isinstance(type_, TensorType):
                parser.fail(f"state @{name} needs a tensor type")
            state[name] = parser.wrap(lambda: StateSpec(name, type_, init))  # type: ignore[arg-type]
            parser.end_of_line()
        elif not legacy and parser.accept("weight "):
            parser.parse_weight(table)
            parser.end_of_line()
        elif not legacy and parser.peek("init ") and table.init is None:
            parser.expect("init")
            table.init = parser.parse_graph()
            parser.end_of_line()
        elif parser.accept("entry " if legacy else "func "):
            public = legacy or not parser.accept("private ")
            name = parser.word("function name")
            if name in module.functions:
                parser.fail(f"function {name} is defined twice")
            graph = parser.parse_graph(None if legacy else table)
            parser.wrap(lambda: module.add_function(name, graph, public))
            parser.end_of_line()
        else:
            parser.fail(
                "expected 'state', 'entry' or '}'" if legacy else "expected 'weight', 'state', 'init', 'func' or '}'"
            )
    parser.skip_space()
    if not parser.at_end():
        parser.fail("unexpected text after the module")
    module.state = state
    return module


parse_program = parse_module
"""The name earlier releases gave ``parse_module``."""


class _Parser:
    """A recursive-descent parser over the whole text, tracking line and column for errors."""

    _decoder = json.JSONDecoder()

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    # -- cursor
    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def fail(self, message: str) -> None:
        line = self.text.count("\n", 0, self.pos) + 1
        col = self.pos - (self.text.rfind("\n", 0, self.pos) + 1) + 1
        lines = self.text.split("\n")
        source_line = lines[line - 1] if line <= len(lines) else ""
        raise TextParseError(f"line {line}, column {col}: {message}\n  {source_line}\n  {' ' * (col - 1)}^")

    def skip_space(self) -> None:
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t\r\n":
                self.pos += 1
            elif self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                break

    def skip_inline_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def peek(self, token: str) -> bool:
        self.skip_inline_space()
        return self.text.startswith(token, self.pos)

    def accept(self, token: str) -> bool:
        if self.peek(token):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str) -> None:
        if not self.accept(token):
            self.fail(f"expected {token!r}")

    def word(self, what: str) -> str:
        self.skip_inline_space()
        if self.pos < len(self.text) and self.text[self.pos] == '"':
            value = self.json_value()
            if not isinstance(value, str):
                self.fail(f"expected a {what}")
            return value
        match = _PLAIN_NAME.match(self.text, self.pos)
        if not match:
            self.fail(f"expected a {what}")
        assert match is not None
        self.pos = match.end()
        return match.group(0)

    def json_value(self) -> Any:
        self.skip_inline_space()
        if self.text.startswith("None", self.pos):
            self.pos += 4
            return None
        try:
            value, end = self._decoder.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            self.fail(f"expected a JSON value ({exc.msg})")
        self.pos = end
        return value

    def end_of_line(self) -> None:
        self.skip_inline_space()
        if self.text.startswith("//", self.pos):
            self.skip_space()
            return
        if self.pos < len(self.text) and self.text[self.pos] not in "\r\n":
            self.fail("unexpected text at the end of the line")
        self.skip_space()

    # -- grammar
    def parse_graph(self, table: WeightTable | None = None) -> Graph:
        self.skip_space()
        graph = Graph(table)
        if not self.accept("graph"):
            self.fail("expected 'graph'")
        self.expect("(")
        if not self.accept(")"):
            while True:
                self.expect("%")
                name = self.word("input name")
                self.expect(":")
                type_ = self.parse_type()
                self.wrap(lambda: graph.add_input(name, type_))
                if self.accept(")"):
                    break
                self.expect(",")
        self.expect("{")
        self.end_of_line()
        while True:
            self.skip_space()
            if self.accept("}"):
                return graph
            if self.at_end():
                self.fail("missing '}' at the end of the graph")
            self.parse_statement(graph)

    def parse_statement(self, graph: Graph) -> None:
        if self.peek("meta {") or self.peek("input_structure ") or self.peek("output_structure "):
            key = self.word("metadata key")
            value = self.json_value()
            if key == "meta":
                if not isinstance(value, dict):
                    self.fail("meta must be a JSON object")
                graph.meta.update(value)
            else:
                if value is not None and not isinstance(value, dict):
                    self.fail(f"{key} must be a JSON object")
                setattr(graph, key, value)
            self.end_of_line()
        elif self.accept("symbol "):
            name = self.word("symbol name")
            self.expect(":")
            graph.symbols[name] = self.parse_range()
            self.end_of_line()
        elif self.accept("weight "):
            self.parse_weight(graph.table)
            self.end_of_line()
        elif self.peek("init") and not self.peek("init."):
            self.expect("init")
            self.end_of_line()
            graph.init = self.parse_graph()
            self.end_of_line()
        elif self.accept("update "):
            self.skip_inline_space()
            kind = "input" if self.peek("%") else "buffer"
            self.expect("%" if kind == "input" else "@")
            target = self.word("state name")
            self.expect("=")
            value = self.parse_value_ref(graph)
            if kind != "input" and graph.has_weight(target):
                kind = "parameter" if graph.weight(target).kind == "parameter" else "buffer"
            self.wrap(lambda: graph.add_state_update(kind, target, value))
            self.end_of_line()
        elif self.accept("return"):
            outs: list[Value] = []
            self.skip_inline_space()
            if not self.peek("\n") and not self.at_end():
                outs.append(self.parse_value_ref(graph))
                while self.accept(","):
                    outs.append(self.parse_value_ref(graph))
            graph.set_outputs(outs)
            self.end_of_line()
        else:
            self.parse_node(graph)
            self.end_of_line()

    def parse_range(self) -> SymbolRange:
        self.skip_inline_space()
        match = re.compile(r"(-?\d+)\.\.(inf|-?\d+)").match(self.text, self.pos)
        if not match:
            self.fail("expected a range such as 1..64 or 2..inf")
        assert match is not None
        self.pos = match.end()
        high = None if match.group(2) == "inf" else int(match.group(2))
        return SymbolRange(int(match.group(1)), high)

    def parse_weight(self, table: WeightTable) -> None:
        self.expect("@")
        name = self.word("weight name")
        self.expect(":")
        type_ = self.parse_type()
        kind = self.word("weight kind")
        persistent = True
        aliases: list[str] = []
        data = None
        while True:
            if self.accept("non-persistent"):
                persistent = False
            elif self.accept("aliases("):
                while True:
                    self.expect("@")
                    aliases.append(self.word("alias"))
                    if self.accept(")"):
                        break
                    self.expect(",")
            elif self.accept("data="):
                data = self.json_value()
            else:
                break
        self.wrap(lambda: table.add(Weight(name, type_, kind, aliases, persistent, data)))

    def parse_type(self) -> ValueType | None:
        self.skip_inline_space()
        if self.accept("?"):
            return None
        start = self.pos
        match = re.compile(r"[a-z][a-z0-9]*").match(self.text, self.pos)
        if not match:
            self.fail("expected a type such as f32[1,16] or int")
        assert match is not None
        word = match.group(0)
        self.pos = match.end()
        if word in ("int", "float", "bool"):
            return ScalarType(word)
        if word not in SHORT_DTYPES:
            self.pos = start
            self.fail(f"unknown dtype {word!r}")
        self.expect("[")
        dims: list[int | str] = []
        depth = 0
        current = ""
        while True:
            if self.at_end():
                self.fail("unterminated shape")
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            if depth == 0 and ch in ",]":
                if current.strip():
                    dims.append(_parse_dim(current.strip()))
                elif ch == "," or dims:
                    self.fail("empty dimension")
                current = ""
                if ch == "]":
                    break
            else:
                current += ch
        return TensorType(tuple(dims), SHORT_DTYPES[word])

    def parse_value_ref(self, graph: Graph) -> Value:
        self.skip_inline_space()
        if self.accept("%"):
            name = self.word("value name")
            if not graph.has_value(name):
                self.fail(f"%{name} is used before it is defined")
            return graph.value(name)
        if self.accept("@"):
            name = self.word("weight name")
            if not graph.has_weight(name):
                self.fail(f"@{name} is not a declared weight")
            return graph.weight(name)
        self.fail("expected %value or @weight")
        raise AssertionError

    def parse_arg(self, graph: Graph) -> Any:
        self.skip_inline_space()
        if self.peek("%") or self.peek("@"):
            return self.parse_value_ref(graph)
        if self.accept("["):
            items: list[Any] = []
            if not self.accept("]"):
                while True:
                    items.append(self.parse_arg(graph))
                    if self.accept("]"):
                        break
                    self.expect(",")
            return items
        return self.json_value()

    def parse_node(self, graph: Graph) -> None:
        names: list[str] = []
        if self.peek("%"):
            while True:
                self.expect("%")
                names.append(self.word("result name"))
                if self.accept("="):
                    break
                self.expect(",")
        op_type = self.word("op type")
        if not re.fullmatch(r"[A-Za-z_][\w]*(\.[\w]+)+", op_type):
            self.fail(f"malformed op type {op_type!r}: expected namespace.op.overload")
        self.expect("(")
        args: list[Any] = []
        if not self.accept(")"):
            while True:
                args.append(self.parse_arg(graph))
                if self.accept(")"):
                    break
                self.expect(",")
        attrs: dict[str, Any] = {}
        if self.accept("{"):
            if not self.accept("}"):
                while True:
                    key = self.word("attribute name")
                    self.expect("=")
                    attrs[key] = self.json_value()
                    if self.accept("}"):
                        break
                    self.expect(",")
        self.expect(":")
        self.expect("(")
        in_types: list[ValueType | None] = []
        if not self.accept(")"):
            while True:
                in_types.append(self.parse_type())
                if self.accept(")"):
                    break
                self.expect(",")
        self.expect("->")
        out_types: list[ValueType | None] = []
        if self.accept("("):
            if not self.accept(")"):
                while True:
                    out_types.append(self.parse_type())
                    if self.accept(")"):
                        break
                    self.expect(",")
        else:
            out_types.append(self.parse_type())
        node_name = names[0] if names else None
        if self.accept("loc("):
            node_name = self.word("node name")
            self.expect(")")
        if node_name is None:
            self.fail("a node without results needs loc(name)")
        if len(names) != len(out_types):
            self.fail(f"{len(names)} result names for {len(out_types)} result types")
        operands = [a for a in _flatten(args)]
        if len(in_types) != len(operands):
            self.fail(f"{len(operands)} operands but {len(in_types)} operand types")
        for operand, declared in zip(operands, in_types):
            if declared is not None and operand.type is not None and declared != operand.type:
                self.fail(f"{operand.ref} has type {operand.type}, not {declared}")
        assert node_name is not None
        meta: Any = {}
        if self.accept("meta "):
            meta = self.json_value()
            if not isinstance(meta, dict):
                self.fail("a node's meta must be a JSON object")
        node = self.wrap(
            lambda: graph.create_node(op_type, args, attrs, out_types, name=node_name, output_names=names, meta=meta)
        )
        if self.accept("regions"):
            self.parse_regions(node)
        elif op_type in REGION_OPS:
            self.fail(f"node {node_name} ({op_type}): {check_region_op(node)}; write its regions {{ ... }}")

    def parse_regions(self, node: Node) -> None:
        """``regions { name: graph(...) {...} ... }`` after a region op: its nested graphs, in order."""
        self.expect("{")
        self.end_of_line()
        while True:
            self.skip_space()
            if self.accept("}"):
                break
            if self.at_end():
                self.fail(f"missing '}}' at the end of the regions of {node.name}")
            label = self.word("region name")
            expected = region_name(node.op_type, len(node.regions))
            if label != expected:
                self.fail(f"region {len(node.regions)} of {node.op_type} is called {expected!r}, not {label!r}")
            self.expect(":")
            node.regions.append(self.parse_graph())
        problem = check_region_op(node)
        if problem:
            self.fail(f"node {node.name} ({node.op_type}): {problem}")

    def wrap(self, action: Any) -> Any:
        try:
            return action()
        except IRError as exc:
            self.fail(str(exc))


def _flatten(args: list[Any]) -> list[Value]:
    out: list[Value] = []
    for arg in args:
        if isinstance(arg, Value):
            out.append(arg)
        elif isinstance(arg, list):
            out.extend(a for a in arg if isinstance(a, Value))
    return out


def _parse_dim(text: str) -> int | str:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if not NAME_PATTERN.fullmatch(re.sub(r"[*+(), ]", "", text)):
        raise TextParseError(f"malformed dimension {text!r}")
    return text
