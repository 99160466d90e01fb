"""The compact combined-query syntax of the CLI, in the spirit of rclip.

``"2:red dress" + ./photo.jpg - leather`` is three terms joined by ``+`` and ``-``: each term is text, an
image path (a file that exists), or ``item:ID`` (a stored item); an optional ``WEIGHT:`` prefix scales it,
and ``-`` subtracts it. Words between operators form one term, so quoting is optional.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from typing import Literal

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
    if os.path.isfile(os.path.expanduser(text)):
        return Term("image", os.path.expanduser(text), sign * weight)
    return Term("text", text, sign * weight)
