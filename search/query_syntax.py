"""The compact query syntax: combined queries (CLI) and metadata filters (CLI and HTTP service alike).

Combined queries, in the spirit of rclip: ``"2:red dress" + ./photo.jpg - leather`` is three terms joined by
``+`` and ``-``: each term is text, an image path (a file that exists), or ``item:ID`` (a stored item); an
optional ``WEIGHT:`` prefix scales it, and ``-`` subtracts it. Words between operators form one term, so
quoting is optional.

Filters: ``NAME=VALUE`` or ``NAME:VALUE`` (the first ``=`` or ``:`` splits), the same on the command line
(``--filter``) and over HTTP (``attr``): ``category=shoes,bags`` (one of several categories),
``price=10..50`` (either end may be left open), ``price_min=10``, ``price_max=50``, and any other name is an
attribute that must equal the value.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from catalens.indexer.store import ItemFilter
from catalens.search.errors import QueryError

_WEIGHT = re.compile(r"^(?P<weight>[+-]?(?:\d+(?:\.\d*)?|\.\d+)):(?P<rest>.+)$", re.S)


@dataclass(frozen=True)
class Term:
    """One parsed term: what it is, its value and its signed weight."""

    kind: Literal["text", "image", "item"]
    value: str
    weight: float


def parse_query(words: str | list[str]) -> list[Term]:
    """Parse a combined query.

    Args:
        words: the query as one string (shell-quoted terms allowed), or as several argv words, each one token.

    Returns:
        The terms, in order, with negative weights for subtracted terms.

    Raises:
        QueryError: the query is empty, starts or ends with an operator, or has two operators in a row.
    """
    if isinstance(words, list) and len(words) == 1:
        words = words[0]
    if isinstance(words, str):
        try:
            tokens = shlex.split(words)
        except ValueError:  # an apostrophe in "men's shirt" is text, not a quote
            tokens = words.split()
    else:
        tokens = list(words)  # argv words: the shell already grouped quoted terms
    terms: list[Term] = []
    sign = 1.0
    current: list[str] = []
    expecting_term = True

    def close() -> None:
        if current:
            terms.append(_term(" ".join(current), sign))
            current.clear()

    for token in tokens:
        if token in ("+", "-"):
            if expecting_term and not current:
                raise QueryError(f"the operator {token!r} must sit between two terms")
            close()
            sign = 1.0 if token == "+" else -1.0
            expecting_term = True
        else:
            current.append(token)
            expecting_term = False
    if expecting_term and terms:
        raise QueryError("the query ends with an operator")
    close()
    if not terms:
        raise QueryError("the query is empty")
    return terms


def _term(text: str, sign: float) -> Term:
    weight = 1.0
    match = _WEIGHT.match(text)
    if match:
        weight = float(match.group("weight"))
        text = match.group("rest").strip()
    if text.startswith("item:") and len(text) > 5:
        return Term("item", text[5:], sign * weight)
    if "\x00" not in text and os.path.isfile(os.path.expanduser(text)):  # a NUL cannot be in a path: it is text
        return Term("image", os.path.expanduser(text), sign * weight)
    return Term("text", text, sign * weight)


_FILTER_SEPARATOR = re.compile(r"[=:]")


def split_filter(spec: str, what: str = "filter") -> tuple[str, str]:
    """Split one filter at its first ``=`` or ``:`` into a stripped name and value.

    Args:
        spec: e.g. ``"color=red"`` or ``"color:red"``; the value may hold further ``=`` or ``:``.
        what: how the caller's surface names a filter (``--filter``, ``attr``), used in the error message.

    Raises:
        QueryError: no separator, or an empty name or value.
    """
    parts = _FILTER_SEPARATOR.split(spec, maxsplit=1)
    name, value = (parts[0].strip(), parts[1].strip()) if len(parts) == 2 else ("", "")
    if not name or not value:
        raise QueryError(f"{what} needs NAME=VALUE or NAME:VALUE, got {spec!r}")
    return name, value


def parse_filters(specs: Iterable[str], what: str = "filter") -> ItemFilter:
    """Turn filter expressions into one :class:`ItemFilter` (every condition must hold).

    Args:
        specs: ``NAME=VALUE`` or ``NAME:VALUE`` strings: ``category=shoes,bags``, ``price=10..50``,
            ``price_min=10``, ``price_max=50``, or ``ATTRIBUTE=VALUE``. A later price bound replaces an earlier one.
        what: how the caller's surface names a filter (``--filter``, ``attr``), used in error messages.

    Returns:
        The combined filter; attributes in the order given.

    Raises:
        QueryError: a malformed expression, a price that is not a finite number (the message quotes it), or
            a price range whose minimum exceeds its maximum (``price=50..10``).
    """
    categories: list[str] = []
    attributes: list[tuple[str, str]] = []
    bounds: dict[str, float | None] = {"price_min": None, "price_max": None}
    for spec in specs:
        name, value = split_filter(spec, what)
        try:
            if name == "category":
                categories.extend(v.strip() for v in value.split(",") if v.strip())
            elif name == "price":
                start, dots, end = value.partition("..")
                if not dots:
                    raise ValueError(value)
                bounds["price_min"] = float(start) if start else None
                bounds["price_max"] = float(end) if end else None
            elif name in bounds:
                bounds[name] = float(value)
            else:
                attributes.append((name, value))
            if any(bound is not None and not math.isfinite(bound) for bound in bounds.values()):
                raise ValueError(value)
        except ValueError:
            raise QueryError(f"{what} {spec!r}: price filters take numbers, e.g. price=10..50") from None
    low, high = bounds["price_min"], bounds["price_max"]
    if low is not None and high is not None and low > high:
        raise QueryError(f"{what}: the price range {low:g}..{high:g} is empty (its minimum exceeds its maximum)")
    return ItemFilter(tuple(categories), bounds["price_min"], bounds["price_max"], tuple(attributes))
