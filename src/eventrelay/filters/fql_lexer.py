"""The FQL subset's tokens: field paths, literals, operators, parentheses and commas.

    path      type   properties.plan   context.library.name   (segments: letters, digits, _ $ -;
              the first starts with a letter, _ or $)
    string    "text"  with JSON's escapes (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)
    number    12   -3   4.5   1e3
    keyword   and  or  true  false  null
    operator  =  !=  <  <=  >  >=  !      punctuation  (  )  ,

Positions are 1-based characters, as the syntax error reports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from eventrelay.core.errors import ExpressionError

MAX_EXPRESSION_LENGTH = 4_096  # characters: a filter condition is a line or two; this bounds parse work

TokenKind = Literal["path", "string", "number", "keyword", "op", "(", ")", ",", "end"]

KEYWORDS = frozenset({"and", "or", "true", "false", "null"})
OPERATORS = ("!=", "<=", ">=", "=", "<", ">", "!")  # longest first
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_PATH = re.compile(r"[A-Za-z_$][\w$-]*(?:\.[\w$-]+)*", re.ASCII)
END = "the end of the expression"  # what a syntax error says it found past the last character
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str  # as written (a string's decoded value is ``value``)
    position: int  # 1-based character of its first character
    value: str | int | float | None = None  # string: decoded text; number: int or float


def describe(token: Token) -> str:
    """How a syntax error names a token it found."""
    if token.kind == "end":
        return END
    return repr(token.text) if len(token.text) <= 40 else repr(token.text[:37] + "...")


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token. Raises ``ExpressionError``."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        expected = f"at most {MAX_EXPRESSION_LENGTH} characters"
        raise ExpressionError(MAX_EXPRESSION_LENGTH + 1, expected, f"{len(text)} characters")
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        token = _token_at(text, i)
        tokens.append(token)
        i += len(token.text)
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _token_at(text: str, i: int) -> Token:
    ch = text[i]
    if ch in "(),":
        return Token(ch, ch, i + 1)  # type: ignore[arg-type]  # the three punctuation kinds
    if ch == '"':
        return _string(text, i)
    if ch == "=" and text.startswith("==", i):
        raise ExpressionError(i + 1, "= (FQL compares with a single =)", "'=='")
    for op in OPERATORS:
        if text.startswith(op, i):
            return Token("op", op, i + 1)
    if ch == "-" or ch.isdigit():
        number = _NUMBER.match(text, i)
        if number is None:
            raise ExpressionError(i + 1, "a number", repr(ch))
        written = number.group()
        value: int | float = float(written) if any(c in written for c in ".eE") else int(written)
        return Token("number", written, i + 1, value)
    path = _PATH.match(text, i)
    if path is not None:
        written = path.group()
        return Token("keyword" if written in KEYWORDS else "path", written, i + 1)
    if ch == "'":
        raise ExpressionError(i + 1, 'a string in double quotes ("text")', repr(ch))
    raise ExpressionError(i + 1, "a field path, a value, an operator or a parenthesis", repr(ch))


def _string(text: str, start: int) -> Token:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return Token("string", text[start : i + 1], start + 1, "".join(out))
        if ch == "\\":
            i, decoded = _escape(text, i)
            out.append(decoded)
            continue
        out.append(ch)
        i += 1
    expected = f'a closing " for the string that starts at character {start + 1}'
    raise ExpressionError(len(text) + 1, expected, END)


def _escape(text: str, i: int) -> tuple[int, str]:
    """The escape at ``text[i]`` (a backslash): where the string goes on, and the character."""
    code = text[i + 1 : i + 2]
    if code in _ESCAPES:
        return i + 2, _ESCAPES[code]
    if code == "u":
        digits = text[i + 2 : i + 6]
        if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
            return i + 6, chr(int(digits, 16))
        raise ExpressionError(i + 1, "four hex digits after \\u", repr(text[i : i + 6]) if digits else END)
    found = repr("\\" + code) if code else END
    raise ExpressionError(i + 1, 'an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)', found)
