"""Hypothesis on the FQL parser: any text gives a tree or an ExpressionError (never a crash), any
tree written out parses back to itself, and evaluating any tree on any JSON event gives a bool."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventrelay.core.errors import ExpressionError
from eventrelay.filters.evaluate import evaluate
from eventrelay.filters.fql_ast import And, Compare, Const, Contains, Expr, Match, Not, Or, Path, Value, text
from eventrelay.filters.fql_lexer import KEYWORDS
from eventrelay.filters.fql_parser import parse

# FQL-ish pieces, so random text reaches deep into the grammar instead of failing on character 1
PIECES = st.sampled_from(
    ["type", "event", "properties.plan", "context.library.name", "=", "!=", "<", "<=", ">", ">=", "!", "(", ")",
     ",", "and", "or", "true", "false", "null", "contains", "match", '"x"', '"a*"', "1", "-2.5", "1e3", " ", '"',
     "\\", "'", "==", ".", "-", "01"]
)  # fmt: skip


def _check_text(source: str) -> None:
    try:
        tree = parse(source)
    except ExpressionError as exc:
        assert 1 <= exc.position <= len(source) + 1
        assert exc.expected and exc.found
        return
    assert parse(text(tree)) == tree


@settings(max_examples=400)
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_an_expression_error(source: str) -> None:
    _check_text(source)


@settings(max_examples=600)
@given(st.lists(PIECES, max_size=25).map(" ".join) | st.lists(PIECES, max_size=25).map("".join))
def test_fql_like_text_parses_or_raises_an_expression_error(source: str) -> None:
    _check_text(source)


SEGMENT = st.from_regex(r"[A-Za-z_$][A-Za-z0-9_$-]{0,6}", fullmatch=True)
LATER_SEGMENT = st.from_regex(r"[A-Za-z0-9_$-]{1,6}", fullmatch=True)
PATHS = st.builds(
    lambda first, rest: Path((first, *rest)),
    SEGMENT,
    st.lists(LATER_SEGMENT, max_size=3),
).filter(lambda p: not (len(p.parts) == 1 and (p.parts[0] in KEYWORDS)))
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
OPERANDS = PATHS | st.builds(Value, SCALARS)
LEAVES: st.SearchStrategy[Expr] = (
    st.builds(Compare, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), OPERANDS, OPERANDS)
    | st.builds(Contains, PATHS, st.text(max_size=8))
    | st.builds(Match, PATHS, st.text(alphabet="ab*?.", max_size=6))
    | st.builds(Const, st.booleans())
)
TREES: st.SearchStrategy[Expr] = st.recursive(
    LEAVES,
    lambda inner: st.builds(And, inner, inner) | st.builds(Or, inner, inner) | st.builds(Not, inner),
    max_leaves=12,
)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
)
EVENTS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "page"]) | JSON,
        "event": st.text(max_size=8),
        "properties": st.dictionaries(st.sampled_from(["plan", "a", "b", "x-1"]), JSON, max_size=4),
        "context": JSON,
    },
)


@settings(max_examples=400)
@given(TREES)
def test_every_tree_written_out_parses_back_to_itself(tree: Expr) -> None:
    assert parse(text(tree)) == tree


@settings(max_examples=400)
@given(TREES, EVENTS)
def test_evaluating_any_tree_on_any_event_gives_a_bool(tree: Expr, event: dict[str, Any]) -> None:
    result = evaluate(tree, event)
    assert result is True or result is False
    assert evaluate(Not(tree), event) is not result
