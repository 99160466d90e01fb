"""The lexical side of the store: which fields the SQLite FTS5 index holds and how queries become MATCH text.

Every word catalens knows about an item lives in one FTS5 row keyed by the item's integer key: the
catalog's title, description and attributes, and the caption and OCR text the indexer produced. FTS5
ranks matches with BM25; the column weights below say how much a word in each field counts.

User text never reaches FTS5's query syntax as is (a stray quote or ``NEAR`` would be a syntax error or an
operator): each whitespace-separated chunk becomes one quoted phrase, and the phrases are OR-ed so that an
item matching more (and rarer) words ranks higher, the way BM25 engines treat a plain query.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

#: FTS5 columns, in table order.
FIELDS: tuple[str, ...] = ("title", "description", "caption", "ocr", "attributes")

#: BM25 weight per column: a brand printed on the product or a word of the title says more about the item
#: than one word of a long description.
FIELD_WEIGHTS: dict[str, float] = {"title": 3.0, "description": 1.0, "caption": 1.5, "ocr": 2.5, "attributes": 2.0}

#: Porter stemming over Unicode-aware tokens with diacritics folded: "bags" finds "bag", "creme" finds "crème".
TOKENIZER = "porter unicode61 remove_diacritics 2"

#: The most words of an item a "more like this" query keeps (title first): enough for a title, a keyword list and
#: a few attributes, few enough that the lexical list costs what a typed query does.
MORE_LIKE_THIS_WORDS = 32

# Words too common to say anything about a product; dropped from OR queries unless nothing else is left.
_STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it of on or the to with without this that these those".split()
)
# Markers FTS5 puts around matched tokens in snippets; control characters never appear in catalog text.
MARK_OPEN, MARK_CLOSE = "\x02", "\x03"
_WORD = re.compile(r"\w", re.UNICODE)
# Control characters separate words in a query: a NUL would end FTS5's string early ("unterminated string").
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def match_expression(text: str) -> str | None:
    """An FTS5 MATCH expression for free text, or ``None`` when the text has no searchable word.

    Args:
        text: what a person typed, e.g. ``'Kestrel XR-2040 "hiking" boots'``; control characters (a NUL
            included) count as spaces.

    Returns:
        Quoted phrases joined by OR, e.g. ``'"kestrel" OR "xr-2040" OR "hiking" OR "boots"'``; a chunk such
        as ``XR-2040`` stays one phrase, so it matches the tokens ``xr 2040`` next to each other.
    """
    chunks = _chunks(text)
    useful = [c for c in chunks if c not in _STOPWORDS] or chunks
    return _any_of(list(dict.fromkeys(useful)))


def more_like_this(texts: Sequence[str], max_words: int = MORE_LIKE_THIS_WORDS) -> str | None:
    """An FTS5 MATCH expression for items with words like these: the first ``max_words`` distinct searchable
    words of ``texts`` (an item's own fields, its title first), joined by OR.

    BM25 weighs each word by its rarity, so shared rare words (a brand, "ukulele") rank an item above shared
    common ones ("pro", "black"); the bounded lexical path keeps common words cheap at scale. ``None`` when
    the texts have no searchable word.
    """
    chunks = [c for c in _chunks(" ".join(texts)) if c not in _STOPWORDS]
    return _any_of(list(dict.fromkeys(chunks))[:max_words])


def _chunks(text: str) -> list[str]:
    """The searchable whitespace-separated chunks of ``text``, lower-cased, surrounding punctuation stripped."""
    words = _CONTROL.sub(" ", text).lower().split()
    return [chunk for chunk in (c.strip("\"'()[]{}.,;:!?") for c in words) if _WORD.search(chunk)]


def _any_of(chunks: list[str]) -> str | None:
    """Distinct chunks as quoted FTS5 phrases joined by OR (``None`` for none)."""
    if not chunks:
        return None
    return " OR ".join('"' + chunk.replace('"', '""') + '"' for chunk in chunks)


def attribute_text(attributes: dict[str, Any]) -> str:
    """The attributes as indexed text: ``"brand Kestrel; colour red"`` (names count too: "brand kestrel")."""
    parts = []
    for name, value in sorted(attributes.items()):
        if value is None or value == "":
            continue
        values = value if isinstance(value, list) else [value]
        parts.append(f"{name} " + " ".join(str(v) for v in values))
    return "; ".join(parts)


def highlight_html(snippet: str) -> str:
    """An FTS5 snippet as safe HTML: text escaped, matched words in ``<mark>``."""
    escaped = html.escape(snippet, quote=False)
    return escaped.replace(MARK_OPEN, "<mark>").replace(MARK_CLOSE, "</mark>")


def highlight_plain(snippet: str, open_mark: str = "[", close_mark: str = "]") -> str:
    """An FTS5 snippet for a terminal: matched words between ``open_mark`` and ``close_mark``."""
    return snippet.replace(MARK_OPEN, open_mark).replace(MARK_CLOSE, close_mark)
