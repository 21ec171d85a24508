"""An FQL tree applied to an event: ``compile_expr(tree)(event) -> bool``, never raising.

Values follow JSON and Segment's FQL:
- a path that is missing (or runs through a non-object) is ``null``: ``path = null`` asks "missing
  or null", ``path != null`` "present";
- ``=`` and ``!=`` compare type and value: ``"1" = 1`` is false, ``true = 1`` is false, ``1 = 1.0``
  is true; objects and arrays compare deeply;
- ``<``, ``<=``, ``>``, ``>=`` compare two numbers or two strings (by code point); any other pair,
  null included, is false (a type mismatch is a non-match, never an error);
- ``contains`` and ``match`` are false unless the value is a string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from eventrelay.filters.fql_ast import (
    And,
    Compare,
    Contains,
    Expr,
    Match,
    Not,
    Operand,
    Or,
    Path,
)

Event = Mapping[str, Any]
Predicate = Callable[[Event], bool]
Getter = Callable[[Event], Any]


def evaluate(expr: Expr, event: Event) -> bool:
    """Whether ``event`` matches ``expr`` (compile once with ``compile_expr`` when applying it often)."""
    return compile_expr(expr)(event)


def compile_expr(expr: Expr) -> Predicate:
    """``expr`` as a function of an event: built once per filter, called once per event."""
    if isinstance(expr, Or):
        left, right = compile_expr(expr.left), compile_expr(expr.right)
        return lambda e: left(e) or right(e)
    if isinstance(expr, And):
        left, right = compile_expr(expr.left), compile_expr(expr.right)
        return lambda e: left(e) and right(e)
    if isinstance(expr, Not):
        inner = compile_expr(expr.expr)
        return lambda e: not inner(e)
    if isinstance(expr, Compare):
        return _compare(expr)
    if isinstance(expr, Contains):
        get, needle = getter(expr.path), expr.needle
        return lambda e: _is_str(v := get(e)) and needle in v
    if isinstance(expr, Match):
        get, glob = getter(expr.path), glob_regex(expr.pattern)
        return lambda e: _is_str(v := get(e)) and glob.fullmatch(v) is not None
    constant: bool = expr.value
    return lambda e: constant


def getter(path: Path) -> Getter:
    """The value at ``path`` in an event, ``None`` when missing."""
    parts = path.parts

    def get(event: Event) -> Any:
        value: Any = event
        for part in parts:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return get


def glob_regex(pattern: str) -> re.Pattern[str]:
    """``*`` any run of characters (none included), ``?`` exactly one; the rest stands for itself."""
    out = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(out, re.DOTALL)


def _compare(expr: Compare) -> Predicate:
    left, right = _operand(expr.left), _operand(expr.right)
    op = expr.op
    if op == "=":
        return lambda e: same(left(e), right(e))
    if op == "!=":
        return lambda e: not same(left(e), right(e))
    order = _ORDER[op]
    return lambda e: _ordered(left(e), right(e), order)


def _operand(operand: Operand) -> Getter:
    if isinstance(operand, Path):
        return getter(operand)
    constant = operand.value
    return lambda e: constant


def same(a: Any, b: Any) -> bool:
    """JSON equality: types must agree (a bool is not a number), numbers by value, containers deeply.
    Iterative, so an event nested as deep as JSON parsers allow cannot exhaust the stack."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            if x.keys() != y.keys():
                return False
            pending.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif not _same_scalar(x, y):
            return False
    return True


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and not isinstance(a, Mapping | list) and bool(a == b)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def _ordered(a: Any, b: Any, order: Callable[[Any, Any], bool]) -> bool:
    if (_is_number(a) and _is_number(b)) or (_is_str(a) and _is_str(b)):
        return order(a, b)
    return False


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)
