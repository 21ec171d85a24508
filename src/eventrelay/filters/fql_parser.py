"""A recursive-descent parser for the FQL subset (never ``eval``).

Grammar, loosest binding first (``and`` binds tighter than ``or``, ``!`` tighter than both; ``and``
and ``or`` group left to right; a comparison has exactly two sides):

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "!" unary | primary
    primary    := "(" expr ")"
                | ("contains" | "match") "(" path "," string ")"
                | operand compare_op operand
                | "true" | "false"
    operand    := path | string | number | "true" | "false" | "null"
    compare_op := "=" | "!=" | "<" | "<=" | ">" | ">="

``path = null`` is "the field is missing (or null)", ``path != null`` "it exists". A syntax error
is an ``ExpressionError`` naming the 1-based position and what was expected there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from eventrelay.core.errors import ExpressionError
from eventrelay.filters.fql_ast import (
    And,
    Compare,
    CompareOp,
    Const,
    Contains,
    Expr,
    Match,
    Not,
    Operand,
    Or,
    Path,
    Value,
)
from eventrelay.filters.fql_lexer import Token, describe, tokenize

MAX_NESTING = 64  # parentheses and ! deep: far beyond a real condition; bounds the recursion
FUNCTIONS = ("contains", "match")
COMPARE_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_OPERAND = "a field path or a value (a string, number, true, false or null)"
_CONDITION = "a condition (a comparison, contains(...), match(...), !, ( or true/false)"


def parse(text: str) -> Expr:
    """The expression ``text`` as a tree. Raises ``ExpressionError`` (position, what was expected)."""
    return _Parser(tokenize(text)).parse()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._i = 0
        self._depth = 0

    def parse(self) -> Expr:
        if self._peek().kind == "end":
            raise self._error(_CONDITION)
        expr = self._or()
        if self._peek().kind != "end":
            raise self._error("and, or, or the end of the expression")
        return expr

    # -- the grammar ------------------------------------------------------------------------
    def _or(self) -> Expr:
        expr = self._and()
        while self._keyword("or"):
            expr = Or(expr, self._and())
        return expr

    def _and(self) -> Expr:
        expr = self._unary()
        while self._keyword("and"):
            expr = And(expr, self._unary())
        return expr

    def _unary(self) -> Expr:
        token = self._peek()
        if token.kind == "op" and token.text == "!":
            self._next()
            return Not(self._nested(self._unary))
        return self._primary()

    def _primary(self) -> Expr:
        token = self._peek()
        if token.kind == "(":
            self._next()
            expr = self._nested(self._or)
            self._expect(")", "')' to close the '(' at character " + str(token.position))
            return expr
        if token.kind == "path" and token.text in FUNCTIONS and self._peek(1).kind == "(":
            return self._call()
        if token.kind not in ("path", "string", "number", "keyword") or token.text in ("and", "or"):
            raise self._error(_CONDITION)
        left = self._operand()
        op = self._peek()
        if op.kind == "op" and op.text in COMPARE_OPS:
            self._next()
            return Compare(cast(CompareOp, op.text), left, self._operand())
        if isinstance(left, Value) and isinstance(left.value, bool):
            return Const(left.value)
        raise self._error("a comparison operator (=, !=, <, <=, >, >=)")

    def _call(self) -> Expr:
        name = self._next().text
        self._next()  # (
        path = self._path(f"a field path as the first argument of {name}()")
        self._expect(",", f"',' between the arguments of {name}()")
        text = self._peek()
        if text.kind != "string":
            raise self._error(f"a string as the second argument of {name}()")
        self._next()
        self._expect(")", f"')' to close {name}(")
        value = cast(str, text.value)
        return Contains(path, value) if name == "contains" else Match(path, value)

    def _operand(self) -> Operand:
        token = self._peek()
        if token.kind == "path":
            return self._path(_OPERAND)
        if token.kind in ("string", "number"):
            self._next()
            return Value(token.value)
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            self._next()
            return Value(None if token.text == "null" else token.text == "true")
        raise self._error(_OPERAND)

    def _path(self, expected: str) -> Path:
        token = self._peek()
        if token.kind != "path":
            raise self._error(expected)
        self._next()
        return Path(tuple(token.text.split(".")))

    # -- tokens -------------------------------------------------------------------------------
    def _nested(self, rule: Callable[[], Expr]) -> Expr:
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise self._error(f"an expression nested at most {MAX_NESTING} levels deep (parentheses and !)")
        try:
            return rule()
        finally:
            self._depth -= 1

    def _peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._i + ahead, len(self._tokens) - 1)]

    def _next(self) -> Token:
        token = self._peek()
        self._i += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token.kind == "keyword" and token.text == word:
            self._next()
            return True
        return False

    def _expect(self, kind: str, expected: str) -> None:
        if self._peek().kind != kind:
            raise self._error(expected)
        self._next()

    def _error(self, expected: str) -> ExpressionError:
        token = self._peek()
        return ExpressionError(token.position, expected, describe(token))
