"""The parsed form of an FQL expression, and its canonical text.

    Expr     = Or | And | Not | Compare | Contains | Match | Const
    Operand  = Path | Value          (the two sides of a comparison)

``text(expr)`` writes an expression back so that parsing it gives the same tree (the parser's
round-trip property); the delivery log shows filters in this form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import orjson

Scalar = str | int | float | bool | None
CompareOp = Literal["=", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class Path:
    """A field path: ``("properties", "plan")`` for ``properties.plan``."""

    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Value:
    """A literal: a string, a number, true, false or null."""

    value: Scalar


Operand = Path | Value


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOp
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Contains:
    """``contains(path, "s")``: the value at ``path`` is a string holding ``needle``."""

    path: Path
    needle: str


@dataclass(frozen=True, slots=True)
class Match:
    """``match(path, "glob*")``: the value at ``path`` is a string matching the glob (``*`` any run,
    ``?`` one character, everything else itself)."""

    path: Path
    pattern: str


@dataclass(frozen=True, slots=True)
class Const:
    """``true`` or ``false`` written as a whole condition."""

    value: bool


@dataclass(frozen=True, slots=True)
class Not:
    expr: Expr


@dataclass(frozen=True, slots=True)
class And:
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Or:
    left: Expr
    right: Expr


Expr = Or | And | Not | Compare | Contains | Match | Const


def text(expr: Expr) -> str:
    """The canonical text of ``expr``: parentheses only where precedence needs them."""
    return _text(expr, 0)


# Binding strength: or < and < not/atoms. A child weaker than its parent is parenthesised.
_STRENGTH = {Or: 1, And: 2}


def _text(expr: Expr, parent: int) -> str:
    if isinstance(expr, Or | And):
        strength = _STRENGTH[type(expr)]
        word = "or" if isinstance(expr, Or) else "and"
        # left-associative: a right child of the same strength keeps its parentheses
        out = f"{_text(expr.left, strength)} {word} {_text(expr.right, strength + 1)}"
        return f"({out})" if strength < parent else out
    if isinstance(expr, Not):
        inner = expr.expr
        if isinstance(inner, Compare | And | Or):  # !(a = 1) reads better than !a = 1 (the same tree)
            return f"!({_text(inner, 0)})"
        return f"!{_text(inner, 3)}"
    if isinstance(expr, Compare):
        return f"{operand_text(expr.left)} {expr.op} {operand_text(expr.right)}"
    if isinstance(expr, Contains):
        return f"contains({path_text(expr.path)}, {string_text(expr.needle)})"
    if isinstance(expr, Match):
        return f"match({path_text(expr.path)}, {string_text(expr.pattern)})"
    return "true" if expr.value else "false"


def path_text(path: Path) -> str:
    return ".".join(path.parts)


def operand_text(operand: Operand) -> str:
    if isinstance(operand, Path):
        return path_text(operand)
    v = operand.value
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return string_text(v)
    if isinstance(v, float) and not math.isfinite(v):
        return "1e999" if v > 0 else "-1e999"  # what the lexer reads back as this float
    return repr(v)


def string_text(s: str) -> str:
    """``s`` as a double-quoted FQL string (JSON's escapes, which the lexer reads)."""
    try:
        return orjson.dumps(s).decode()
    except orjson.JSONEncodeError:  # a lone surrogate (from \\uD800): escape every such character
        return '"' + "".join(_escape_char(c) for c in s) + '"'


def _escape_char(c: str) -> str:
    if c in '"\\':
        return "\\" + c
    if ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF:
        return f"\\u{ord(c):04x}"
    return c
