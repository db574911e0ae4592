"""A tiny, safe arithmetic language for per-trial resources (`resources.gpu: 0.125 * K`).

Grammar (nothing else is accepted, and nothing is ever passed to eval):

    expr  := term (('+' | '-') term)*
    term  := unary (('*' | '/') unary)*
    unary := ('-' | '+') unary | atom
    atom  := NUMBER | NAME | ('min' | 'max') '(' expr (',' expr)* ')' | '(' expr ')'

A NAME is letters, digits, '_' and '.' (so trainer keys such as `model.k` are names); it is looked
up as a whole in a mapping, so `x.__class__` is just an unknown name, never attribute access.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sweeper.util.names import nearest

MAX_LENGTH = 200
"""Longer expressions are refused; a resource formula is a line, and this bounds parse work."""
MAX_DEPTH = 32
"""Deeper nesting is refused so hostile input cannot exhaust Python's recursion limit."""
FUNCTIONS = {"min": min, "max": max}

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op>[-+*/(),]))"
)


class ExprError(ValueError):
    """A malformed or disallowed expression; the message is one line for the user."""


@dataclass(frozen=True)
class Expr:
    """A parsed expression: `evaluate(values)` computes it; `names` are the names it reads."""

    text: str
    tree: tuple
    names: frozenset[str]

    def evaluate(self, values: Mapping[str, float]) -> float:
        """Compute the expression with `values` for its names (all must be numbers)."""
        result = _eval(self.tree, values)
        if not math.isfinite(result):
            raise ExprError(f"{self.text!r} is not a finite number ({result})")
        return result


def parse(text: str, names: Iterable[str]) -> Expr:
    """Parse `text`, allowing only the given `names`; raise ExprError naming the problem."""
    if not isinstance(text, str):
        raise ExprError(f"expected an arithmetic expression, got {text!r}")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    parser = _Parser(_tokenize(text), set(names))
    tree = parser.expr(0)
    if parser.peek() is not None:
        raise ExprError(f"unexpected {parser.peek()[1]!r} in {text!r}")
    return Expr(text=text, tree=tree, names=frozenset(parser.used))


def evaluate(text: str, values: Mapping[str, float]) -> float:
    """Parse and compute `text` in one go, with `values` as the only names."""
    return parse(text, values).evaluate(values)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            bad = text[pos:].lstrip()[:1]
            allowed = "numbers, names, + - * / ( ) , min max"
            raise ExprError(f"unexpected character {bad!r} in {text!r} (allowed: {allowed})")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    if not tokens:
        raise ExprError("empty expression")
    return tokens


class _Parser:
    """Recursive descent over the token list; trees are tuples ('num', v) / ('name', n) / (op, a, b)."""

    def __init__(self, tokens: list[tuple[str, str]], names: set[str]) -> None:
        self.tokens, self.pos, self.names, self.used = tokens, 0, names, set()

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ExprError("expression ends too early")
        self.pos += 1
        return tok

    def expect(self, op: str) -> None:
        tok = self.take()
        if tok != ("op", op):
            raise ExprError(f"expected {op!r}, found {tok[1]!r}")

    def expr(self, depth: int) -> tuple:
        if depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels")
        tree = self.term(depth)
        while self.peek() in (("op", "+"), ("op", "-")):
            tree = (self.take()[1], tree, self.term(depth))
        return tree

    def term(self, depth: int) -> tuple:
        tree = self.unary(depth)
        while self.peek() in (("op", "*"), ("op", "/")):
            tree = (self.take()[1], tree, self.unary(depth))
        return tree

    def unary(self, depth: int) -> tuple:
        if self.peek() in (("op", "-"), ("op", "+")):
            if depth > MAX_DEPTH:
                raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels")
            sign = self.take()[1]
            inner = self.unary(depth + 1)
            return ("neg", inner) if sign == "-" else inner
        return self.atom(depth)

    def atom(self, depth: int) -> tuple:
        kind, text = self.take()
        if kind == "num":
            return ("num", float(text))
        if kind == "name":
            if self.peek() == ("op", "("):
                return self.call(text, depth)
            if text not in self.names:
                raise ExprError(f"unknown name {text!r}{_hint(text, self.names)}")
            self.used.add(text)
            return ("name", text)
        if text == "(":
            tree = self.expr(depth + 1)
            self.expect(")")
            return tree
        raise ExprError(f"unexpected {text!r}")

    def call(self, func: str, depth: int) -> tuple:
        if func not in FUNCTIONS:
            raise ExprError(f"only min() and max() may be called, not {func}()")
        self.expect("(")
        args = [self.expr(depth + 1)]
        while self.peek() == ("op", ","):
            self.take()
            args.append(self.expr(depth + 1))
        self.expect(")")
        return ("call", func, *args)


def _hint(name: str, names: set[str]) -> str:
    return nearest(name, names, fold_case=True) if names else ""


def _eval(tree: tuple, values: Mapping[str, float]) -> float:
    op = tree[0]
    if op == "num":
        return tree[1]
    if op == "name":
        value = values.get(tree[1])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExprError(f"{tree[1]!r} has no numeric value here (got {value!r})")
        return float(value)
    if op == "neg":
        return -_eval(tree[1], values)
    if op == "call":
        return float(FUNCTIONS[tree[1]](_eval(arg, values) for arg in tree[2:]))
    a, b = _eval(tree[1], values), _eval(tree[2], values)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        raise ExprError("division by zero")
    return a / b
