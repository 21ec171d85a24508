"""Destination filters: the FQL subset (lexer, parser, evaluation) and the rules built on it.

Segment's Destination Filters decide per destination which events go out and with which
properties, with conditions written in its Filter Query Language. This package is pure logic
over a parsed event (a ``dict``), importing only ``core``: ``config/`` parses each expression at
config time (a syntax error names the filter, the position and what was expected) and
``delivery/filtering.py`` applies the rules before a send.

    fql_lexer   text -> tokens (with their positions)
    fql_ast     the expression tree, and its canonical text
    fql_parser  tokens -> tree (recursive descent; never ``eval``)
    evaluate    tree x event -> bool (never raises: a missing path is null, a type mismatch is false)
    properties  drop or keep (nested) property paths of an event
    rules       only / drop / sample / drop_properties / allow_properties, in order
"""
