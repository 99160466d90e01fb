"""The compact query syntax (combined queries and filters) through its Python API, and its failure contract:
whatever a person types, it parses or raises :class:`QueryError`, never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalens.indexer.lexical import match_expression
from catalens.search.errors import QueryError
from catalens.search.query_syntax import Term, parse_filters, parse_query


def test_terms_weights_operators_items_and_image_paths(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not read here")
    assert parse_query(f'"2:red dress" + {photo} - leather') == [
        Term("text", "red dress", 2.0),
        Term("image", str(photo), 1.0),
        Term("text", "leather", -1.0),
    ]
    assert parse_query(["item:sku 1", "-", "0.5:blue"]) == [Term("item", "sku 1", 1.0), Term("text", "blue", -0.5)]
    assert parse_query("men's shirt") == [Term("text", "men's shirt", 1.0)]  # an apostrophe is not a quote


@pytest.mark.parametrize("query", ["", "+ red", "red -", "red + - blue"])
def test_a_query_with_no_term_or_a_stray_operator_is_refused(query: str) -> None:
    with pytest.raises(QueryError):
        parse_query(query)


def test_filters_combine_categories_prices_and_attributes() -> None:
    where = parse_filters(["category=shoes, bags", "price=10..", "price_max:50", "color=red"])
    assert where.categories == ("shoes", "bags") and (where.price_min, where.price_max) == (10.0, 50.0)
    assert where.attributes == (("color", "red"),)
    with pytest.raises(QueryError, match="empty"):
        parse_filters(["price=50..10"])
    with pytest.raises(QueryError, match="numbers"):
        parse_filters(["price=nan.."])


@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=40))
def test_any_text_parses_or_is_a_query_error(text: str) -> None:
    # "~\x00" once escaped as ValueError from os.path.expanduser; a NUL is never part of a path
    for parse in (parse_query, lambda t: parse_filters([t])):
        try:
            parse(text)
        except QueryError:
            pass
    expression = match_expression(text)
    assert expression is None or not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in expression)


def test_a_nul_in_a_term_is_text_not_a_path() -> None:
    assert parse_query("~\x00") == [Term("text", "~\x00", 1.0)]
