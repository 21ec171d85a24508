"""The FQL subset, operator by operator: a table of (expression, event, expected match)."""

from __future__ import annotations

from typing import Any

import pytest

from eventrelay.core.errors import ExpressionError
from eventrelay.filters.evaluate import evaluate
from eventrelay.filters.fql_ast import And, Compare, Not, Or, Path, Value, text
from eventrelay.filters.fql_parser import MAX_NESTING, parse

EVENT: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "userId": "u1",
    "properties": {"plan": "pro", "price": 19.5, "seats": 3, "trial": False, "tags": ["a", "b"], "nothing": None},
    "context": {"library": {"name": "analytics-python", "version": "2.3.0"}, "ip": "10.0.0.1"},
}

TABLE: list[tuple[str, bool]] = [
    # = and != on each JSON type
    ('type = "track"', True),
    ('type = "identify"', False),
    ('type != "identify"', True),
    ('event = "Order Completed"', True),
    ("properties.seats = 3", True),
    ("properties.seats = 3.0", True),  # numbers compare by value
    ("properties.price = 19.5", True),
    ("properties.trial = false", True),
    ("properties.trial != true", True),
    ('properties.tags = "a"', False),  # an array is not one of its items
    # nested paths
    ('context.library.name = "analytics-python"', True),
    ('context.library.version != "2.3.0"', False),
    # ordering: numbers and strings
    ("properties.seats > 2", True),
    ("properties.seats >= 3", True),
    ("properties.seats < 3", False),
    ("properties.seats <= 3", True),
    ("properties.price > 19", True),
    ("properties.price < -1", False),
    ('properties.plan > "basic"', True),  # strings by code point
    ('properties.plan < "basic"', False),
    # type mismatches: never a match, never an error
    ('properties.seats = "3"', False),
    ('properties.seats != "3"', True),
    ('properties.seats > "2"', False),
    ("properties.plan > 1", False),
    ("properties.trial = 0", False),  # a bool is not a number
    ("properties.trial < 1", False),
    ('properties.tags > "a"', False),
    ("properties.seats > null", False),
    ("context.library > 1", False),
    # null: missing or null
    ("properties.coupon = null", True),
    ("properties.coupon != null", False),
    ("properties.nothing = null", True),
    ("properties.plan != null", True),
    ("properties.plan = null", False),
    ("traits.email = null", True),  # the whole object is missing
    ("properties.plan.deeper = null", True),  # a path through a string
    ("properties.coupon < 1", False),
    ('properties.coupon != "x"', True),
    ('properties.coupon = ""', False),
    # contains and match
    ('contains(event, "Order")', True),
    ('contains(event, "order")', False),  # case matters
    ('contains(event, "")', True),
    ('contains(properties.seats, "3")', False),  # not a string
    ('contains(properties.missing, "x")', False),
    ('match(context.library.name, "analytics*")', True),
    ('match(context.library.name, "*python")', True),
    ('match(context.library.name, "analytics-?ython")', True),
    ('match(context.library.name, "analytics")', False),  # the whole value must match
    ('match(event, "Order.Completed")', False),  # . is itself, not any character
    ('match(properties.price, "*")', False),
    # and, or, !, parentheses, precedence
    ('type = "track" and properties.seats > 2', True),
    ('type = "track" and properties.seats > 5', False),
    ('type = "page" or properties.seats > 2', True),
    ('type = "page" or properties.seats > 5', False),
    ('!(type = "track")', False),
    ('!type = "page"', True),  # ! binds to the comparison after it
    ('!!(type = "track")', True),
    ('!contains(event, "Refund")', True),
    # and binds tighter than or: true or (false and false)
    ('type = "track" or type = "page" and userId = "nobody"', True),
    ('(type = "track" or type = "page") and userId = "nobody"', False),
    # false and false or true = (false and false) or true
    ('type = "x" and type = "y" or userId = "u1"', True),
    ('type = "x" and (type = "y" or userId = "u1")', False),
    ("true", True),
    ("false", False),
    ("!false and true", True),
    # paths on both sides, literals on both sides
    ("properties.seats = properties.seats", True),
    ("properties.seats = properties.price", False),
    ("1 = 1", True),
    ('"a" < "b"', True),
    ("null = null", True),
    # strings with escapes
    ('event != "say \\"hi\\""', True),
    ('"\\u0041" = "A"', True),
]


@pytest.mark.parametrize(("expression", "expected"), TABLE, ids=[e for e, _ in TABLE])
def test_expression_matches_as_the_table_says(expression: str, expected: bool) -> None:
    assert evaluate(parse(expression), EVENT) is expected


@pytest.mark.parametrize(("expression", "expected"), TABLE, ids=[e for e, _ in TABLE])
def test_canonical_text_parses_back_to_the_same_tree(expression: str, expected: bool) -> None:
    tree = parse(expression)
    assert parse(text(tree)) == tree


def test_and_binds_tighter_than_or_and_both_group_left() -> None:
    a, b, c = (Compare("=", Path((n,)), Value(1)) for n in "abc")
    assert parse("a = 1 or b = 1 and c = 1") == Or(a, And(b, c))
    assert parse("a = 1 and b = 1 or c = 1") == Or(And(a, b), c)
    assert parse("a = 1 or b = 1 or c = 1") == Or(Or(a, b), c)
    assert parse("!a = 1 and b = 1") == And(Not(a), b)


def test_keywords_inside_a_path_are_field_names() -> None:
    assert evaluate(parse("properties.and = 1"), {"properties": {"and": 1}})
    assert evaluate(parse("contains = 2"), {"contains": 2})  # contains without ( is a field


ERRORS: list[tuple[str, int, str]] = [
    ("", 1, "a condition"),
    ("type", 5, "a comparison operator"),
    ("type =", 7, "a field path or a value"),
    ("type = = 1", 8, "a field path or a value"),
    ('type == "x"', 6, "= (FQL compares with a single =)"),
    ('(type = "x"', 12, "')' to close the '(' at character 1"),
    ('type = "x")', 11, "and, or, or the end of the expression"),
    ('type = "x" and', 15, "a condition"),
    ('type = "x" or or', 15, "a condition"),
    ("type = 'x'", 8, "a string in double quotes"),
    ('type = "x', 10, 'a closing " for the string that starts at character 8'),
    ('type = "\\q"', 9, "an escape"),
    ('type = "\\u12"', 9, "four hex digits"),
    ('contains(event "x")', 16, "',' between the arguments of contains()"),
    ("contains(event, 1)", 17, "a string as the second argument of contains()"),
    ('contains("x", "y")', 10, "a field path as the first argument of contains()"),
    ('match(event, "x"', 17, "')' to close match("),
    ("properties.seats > 1 2", 22, "and, or, or the end"),
    ("a = 1 & b = 2", 7, "a field path, a value, an operator or a parenthesis"),
    ("null", 5, "a comparison operator"),
    ("1 < 2 < 3", 7, "and, or, or the end"),
    ("a = 01", 6, "and, or, or the end"),
    ("a = -x", 5, "a number"),
]


@pytest.mark.parametrize(("expression", "position", "expected"), ERRORS, ids=[e for e, _, _ in ERRORS])
def test_a_syntax_error_names_the_position_and_what_was_expected(expression: str, position: int, expected: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(expression)
    assert caught.value.position == position
    assert caught.value.expected.startswith(expected)
    assert f"at character {position}: expected {expected}" in str(caught.value)


def test_nesting_is_bounded_so_no_input_exhausts_the_stack() -> None:
    assert evaluate(parse("(" * MAX_NESTING + "true" + ")" * MAX_NESTING), {})
    with pytest.raises(ExpressionError, match="nested at most"):
        parse("(" * (MAX_NESTING + 1) + "true" + ")" * (MAX_NESTING + 1))
    with pytest.raises(ExpressionError, match="nested at most"):
        parse("!" * 1_000 + "true")


def test_an_overlong_expression_is_refused() -> None:
    with pytest.raises(ExpressionError, match="at most 4096 characters"):
        parse("true or " * 1000 + "true")


def test_deeply_nested_event_values_compare_without_recursion() -> None:
    deep: Any = 1
    for _ in range(5_000):
        deep = {"a": deep}
    assert evaluate(parse("properties.x = properties.y"), {"properties": {"x": deep, "y": deep}})
