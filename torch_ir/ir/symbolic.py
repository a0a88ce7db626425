"""Symbolic dimensions: one bounded grammar, and the expression objects it builds.

A symbolic dimension is an integer expression of symbols: ``seq``, ``2*s0+1``, ``(s0//2)``,
``Max(1, s0 - 1)``, ``s0**2``. Files, the text form and the frontends all give dimensions as text; every
such text is parsed once, here, when its ``TensorType`` is built, into a ``SymExpr``: the text (a ``str``,
so it prints and compares as before) with its parsed tree. Nothing is ever evaluated as Python: the
grammar knows integers, names, ``+ - * / // % **``, parentheses and the functions of ``FUNCTIONS``,
and it is bounded:

- a text of at most ``MAX_TEXT`` characters, at most ``MAX_NODES`` nodes, nested at most ``MAX_DEPTH``;
- integer literals of at most ``MAX_LITERAL``; names of at most ``MAX_NAME`` characters;
- an exponent is an integer literal from 0 to ``MAX_EXPONENT`` (``9**9**9**9`` is refused);
- evaluation (``SymExpr.evaluate``) gives up (None) as soon as a value leaves ``MAX_MAGNITUDE``.

Whoever needs an expression's value or its symbols asks the object (``evaluate``, ``symbols``, ``fold``);
no pass parses a dimension string again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, TypeVar, Union

from torch_ir.errors import IRError

MAX_TEXT = 512
"""The longest dimension text."""
MAX_NODES = 256
"""The most numbers, names and operations one dimension may hold."""
MAX_DEPTH = 32
"""How deeply a dimension may nest (parentheses, calls, unary signs, powers)."""
MAX_LITERAL = 2**62
"""The largest integer literal: no tensor has more elements than an int64 can count."""
MAX_NAME = 64
"""The longest symbol name."""
MAX_EXPONENT = 64
"""The largest exponent of ``**``; an exponent is always an integer literal."""
MAX_MAGNITUDE = 2**126
"""The largest magnitude a value may reach while an expression is evaluated; beyond it, it is unknown."""

FUNCTIONS: dict[str, tuple[int, int]] = {
    "Max": (1, 16),
    "Min": (1, 16),
    "FloorDiv": (2, 2),
    "CeilDiv": (2, 2),
    "CleanDiv": (2, 2),
    "IntTrueDiv": (2, 2),
    "FloatTrueDiv": (2, 2),
    "Mod": (2, 2),
    "PythonMod": (2, 2),
    "ModularIndexing": (3, 3),
    "PowByNatural": (2, 2),
    "CeilToInt": (1, 1),
    "FloorToInt": (1, 1),
    "TruncToInt": (1, 1),
    "Abs": (1, 1),
}
"""The functions a dimension may call (torch's symbolic-shape functions), with their least and most arguments."""

BINARY = ("+", "-", "*", "/", "//", "%", "**")
"""The binary operators, by their spelling in the text and in trees."""

Tree = tuple[Any, ...]
"""A parsed expression: ``("int", 3)``, ``("sym", "s0")``, ``(op, left, right)`` for an operator of
``BINARY``, ``("neg", operand)``, ``("call", name, (argument, ...))``."""

T = TypeVar("T")


class SymExpr(str):
    """A symbolic dimension: its text (this ``str``) and its parsed ``tree``. Build one with ``parse_dim``."""

    tree: Tree
    symbols: frozenset[str]
    """The names it reads."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (parse_dim, (str(self),))

    @property
    def is_symbol(self) -> bool:
        """Whether it is one bare name (``seq``), which an input's size binds."""
        return self.tree[0] == "sym"

    def evaluate(self, bindings: Mapping[str, int]) -> int | None:
        """Its value with each symbol bound, or None: a symbol unbound, a division by zero, a value that is not
        an integer or leaves ``MAX_MAGNITUDE``."""
        try:
            value = _evaluate(self.tree, bindings)
        except (_Unknown, ZeroDivisionError):
            return None
        return int(value) if value.denominator == 1 else None

    def fold(self, leaf: Callable[[int | str], T], node: Callable[[str, list[T]], T]) -> T:
        """Rebuild the expression bottom-up: ``leaf(int or symbol name)``, ``node(operator or function name,
        children)`` (``"neg"`` for a unary minus; the exponent of ``**`` is a leaf)."""

        def walk(tree: Tree) -> T:
            kind = tree[0]
            if kind == "int" or kind == "sym":
                return leaf(tree[1])
            if kind == "neg":
                return node("neg", [walk(tree[1])])
            if kind == "call":
                return node(tree[1], [walk(a) for a in tree[2]])
            return node(kind, [walk(tree[1]), walk(tree[2])])

        return walk(self.tree)

    def same_value_as(self, other: int | str, points: int = 6) -> bool:
        """Whether ``other`` (an int or an expression) has the same value as this expression for every binding
        of the symbols: equal texts, or equal values at several bindings of distinct primes (``2*s`` and
        ``s+s`` are; ``s`` and ``2*s`` are not). Bounded: no symbolic algebra runs."""
        if str(self).replace(" ", "") == str(other).replace(" ", ""):
            return True
        expr = other if isinstance(other, SymExpr) else (parse_dim(other) if isinstance(other, str) else other)
        names = sorted(self.symbols | (expr.symbols if isinstance(expr, SymExpr) else frozenset()))
        compared = 0
        for round_ in range(points):
            bindings = {name: _PRIMES[(round_ * 7 + i * 3) % len(_PRIMES)] + round_ for i, name in enumerate(names)}
            a = self.evaluate(bindings)
            b = expr.evaluate(bindings) if isinstance(expr, SymExpr) else expr
            if a is None or b is None:
                continue
            if a != b:
                return False
            compared += 1
        return compared >= min(3, points)


Dim = Union[int, SymExpr]
"""A dimension: an int, or a parsed symbolic expression."""

_PRIMES = (101, 257, 509, 1021, 2053, 4099, 8209, 16411, 32771, 65537, 131101, 262147)


class _Unknown(Exception):
    """An expression has no value under the bindings (unbound symbol, out of bounds)."""


def _bounded(value: Fraction) -> Fraction:
    if abs(value.numerator) > MAX_MAGNITUDE or value.denominator > MAX_MAGNITUDE:
        raise _Unknown
    return value


def _integer(value: Fraction) -> int:
    if value.denominator != 1:
        raise _Unknown
    return value.numerator


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    n = _integer(exponent)
    if n < 0 or (n > MAX_EXPONENT and abs(base) > 1):
        raise _Unknown
    if abs(base.numerator) > 1 and abs(base.numerator).bit_length() * n > 127:
        raise _Unknown
    if base.denominator > 1 and base.denominator.bit_length() * n > 127:
        raise _Unknown
    return base**n


def _floordiv(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(a // b)


def _ceildiv(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(-(-a // b))


def _mod(a: Fraction, b: Fraction) -> Fraction:
    return a - b * (a // b)


def _trunc(a: Fraction) -> Fraction:
    return Fraction(int(a))


_OPERATORS: dict[str, Callable[[Fraction, Fraction], Fraction]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _floordiv,
    "//": _floordiv,
    "%": _mod,
    "**": _power,
}
_CALLS: dict[str, Callable[..., Fraction]] = {
    "Max": lambda *a: max(a),
    "Min": lambda *a: min(a),
    "FloorDiv": _floordiv,
    "CeilDiv": _ceildiv,
    "CleanDiv": _floordiv,
    "IntTrueDiv": lambda a, b: a / b,
    "FloatTrueDiv": lambda a, b: a / b,
    "Mod": _mod,
    "PythonMod": _mod,
    "ModularIndexing": lambda a, b, c: _mod(_floordiv(a, b), c),
    "PowByNatural": _power,
    "CeilToInt": lambda a: _ceildiv(a, Fraction(1)),
    "FloorToInt": lambda a: _floordiv(a, Fraction(1)),
    "TruncToInt": _trunc,
    "Abs": abs,
}


def _evaluate(tree: Tree, bindings: Mapping[str, int]) -> Fraction:
    kind = tree[0]
    if kind == "int":
        return Fraction(tree[1])
    if kind == "sym":
        value = bindings.get(tree[1])
        if value is None:
            raise _Unknown
        return _bounded(Fraction(int(value)))
    if kind == "neg":
        return -_evaluate(tree[1], bindings)
    if kind == "call":
        return _bounded(_CALLS[tree[1]](*(_evaluate(a, bindings) for a in tree[2])))
    return _bounded(_OPERATORS[kind](_evaluate(tree[1], bindings), _evaluate(tree[2], bindings)))


# ------------------------------------------------------------------ parsing


class _Parser:
    """Recursive descent over the grammar::

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/" | "//" | "%") unary)*
    unary := ("-" | "+") unary | power
    power := atom ("**" INT)?
    atom  := INT | NAME | FUNCTION "(" expr ("," expr)* ")" | "(" expr ")"
    """

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.depth = 0
        self.nodes = 0
        self.symbols: set[str] = set()

    def fail(self, message: str) -> IRError:
        return IRError(
            f"dimension {self.text!r}: {message} (at character {self.pos + 1}); a dimension is an integer, or an "
            "integer expression of symbols with + - * // % **, parentheses and "
            f"{', '.join(FUNCTIONS)}"
        )

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def peek(self, token: str) -> bool:
        self.skip()
        return self.text.startswith(token, self.pos)

    def take(self, token: str) -> bool:
        if self.peek(token):
            self.pos += len(token)
            return True
        return False

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(f"more than {MAX_NODES} numbers, names and operations")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} deep")

    def parse(self) -> Tree:
        tree = self.expr()
        self.skip()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos]!r}")
        return tree

    def expr(self) -> Tree:
        tree = self.term()
        while True:
            op = "+" if self.take("+") else ("-" if self.take("-") else "")
            if not op:
                return tree
            self.count()
            tree = (op, tree, self.term())

    def term(self) -> Tree:
        tree = self.unary()
        while True:
            if self.peek("**"):
                raise self.fail("'**' needs an integer exponent")
            op = next((o for o in ("//", "*", "/", "%") if self.take(o)), "")
            if not op:
                return tree
            self.count()
            tree = (op, tree, self.unary())

    def unary(self) -> Tree:
        if self.take("-"):
            self.enter()
            self.count()
            tree: Tree = ("neg", self.unary())
            self.depth -= 1
            return tree
        if self.take("+"):
            self.enter()
            tree = self.unary()
            self.depth -= 1
            return tree
        return self.power()

    def power(self) -> Tree:
        base = self.atom()
        if not self.take("**"):
            return base
        self.count()
        self.skip()
        start = self.pos
        exponent = self.integer()
        if exponent is None or exponent > MAX_EXPONENT:
            self.pos = start
            raise self.fail(f"an exponent is an integer literal from 0 to {MAX_EXPONENT}")
        if self.peek("**"):
            raise self.fail(f"an exponent is an integer literal from 0 to {MAX_EXPONENT}, not a power")
        return ("**", base, ("int", exponent))

    def integer(self) -> int | None:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos].isdigit() and self.text[self.pos].isascii():
            self.pos += 1
            if self.pos - start > len(str(MAX_LITERAL)):
                self.pos = start
                raise self.fail(f"an integer over {MAX_LITERAL}")
        if self.pos == start:
            return None
        value = int(self.text[start : self.pos])
        if value > MAX_LITERAL:
            self.pos = start
            raise self.fail(f"an integer over {MAX_LITERAL}")
        return value

    def atom(self) -> Tree:
        self.skip()
        self.count()
        value = self.integer()
        if value is not None:
            return ("int", value)
        if self.take("("):
            self.enter()
            tree = self.expr()
            if not self.take(")"):
                raise self.fail("expected ')'")
            self.depth -= 1
            return tree
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] == "_"):
            if not self.text[self.pos].isascii():
                break
            self.pos += 1
        name = self.text[start : self.pos]
        if not name or name[0].isdigit():
            self.pos = start
            raise self.fail("expected a number, a name or '('")
        if len(name) > MAX_NAME:
            self.pos = start
            raise self.fail(f"a name longer than {MAX_NAME} characters")
        if self.peek("("):
            return self.call(name, start)
        if name in FUNCTIONS:
            self.pos = start
            raise self.fail(f"{name} is a function: call it, {name}(...)")
        self.symbols.add(name)
        return ("sym", name)

    def call(self, name: str, start: int) -> Tree:
        if name not in FUNCTIONS:
            self.pos = start
            raise self.fail(f"unknown function {name!r}")
        self.take("(")
        self.enter()
        arguments = [self.expr()]
        while self.take(","):
            arguments.append(self.expr())
        if not self.take(")"):
            raise self.fail("expected ',' or ')'")
        self.depth -= 1
        least, most = FUNCTIONS[name]
        if not least <= len(arguments) <= most:
            self.pos = start
            raise self.fail(f"{name} takes {least} to {most} arguments, got {len(arguments)}")
        return ("call", name, tuple(arguments))


@functools.lru_cache(maxsize=65536)
def _parse_text(text: str) -> int | SymExpr:
    if len(text) > MAX_TEXT:
        raise IRError(f"dimension {text[:40]!r}...: longer than {MAX_TEXT} characters")
    if not text.strip():
        raise IRError("a dimension cannot be empty")
    parser = _Parser(text)
    tree = parser.parse()
    if tree[0] == "int":
        return int(tree[1])
    expr = SymExpr(text)
    expr.tree = tree
    expr.symbols = frozenset(parser.symbols)
    return expr


def parse_dim(text: int | str) -> int | SymExpr:
    """A dimension from its text: an int for an integer literal (``"16"``), else a ``SymExpr``; ``IRError``
    naming the problem for any text outside the grammar. Cached: each distinct text is parsed once."""
    if isinstance(text, SymExpr):
        return text
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise IRError(f"dimension {text!r} is neither an int nor a symbolic expression")
    if isinstance(text, int):
        return text
    return _parse_text(str(text))


def evaluate_dim(dim: int | str, bindings: Mapping[str, int]) -> int | None:
    """The value of a dimension (an int, a ``SymExpr``, or its text) under ``bindings``; None when it has
    none (see ``SymExpr.evaluate``) or the text is outside the grammar."""
    if isinstance(dim, int) and not isinstance(dim, bool):
        return dim
    try:
        expr = parse_dim(dim)
    except IRError:
        return None
    return expr if isinstance(expr, int) else expr.evaluate(bindings)


__all__ = [
    "BINARY",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LITERAL",
    "MAX_MAGNITUDE",
    "MAX_NAME",
    "MAX_NODES",
    "MAX_TEXT",
    "Dim",
    "SymExpr",
    "Tree",
    "evaluate_dim",
    "parse_dim",
]
