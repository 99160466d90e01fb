"""The engine's value types: queries, options, hits and results, plus the small rules that shape a result list.

Everything here is a frozen dataclass (or a function over them) with no access to the store or the model, so
the HTTP schemas, the CLI and the evaluation code can import it without opening anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np
from PIL import Image

from catalens.indexer.records import CatalogFields
from catalens.indexer.store import ItemFilter, StoredItem
from catalens.search.errors import QueryError

SearchMode = Literal["vector", "lexical", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = ("vector", "lexical", "hybrid")


@dataclass(frozen=True)
class Fusion:
    """Reciprocal-rank fusion of the vector and the lexical result lists (hybrid mode).

    An item's fused score is ``vector_weight / (rank_constant + vector_rank) + lexical_weight /
    (rank_constant + lexical_rank)``, a list it is missing from adding nothing. Ranks are 1-based; each list
    contributes its best ``depth`` items (at least as many as the page needs).

    The defaults were measured with ``scripts/tune_fusion.py`` (``catalens eval``'s code) on three kinds of
    catalog: rich metadata (the demo catalog), images only with attribute captions, and brands printed on
    products (OCR). Lexical weight 1.25 with rank constant 10 kept every catalog within 94 % of the better
    single mode's MRR, against 92 % for the textbook 1 and 60; a weight above 1 also means a word match
    outranks a vector match of the same rank instead of tying with it.
    """

    vector_weight: float = 1.0
    lexical_weight: float = 1.25
    rank_constant: float = 10.0
    depth: int = 100

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.vector_weight, self.lexical_weight, self.rank_constant)):
            raise QueryError("fusion weights and the rank constant must be finite numbers")
        if self.vector_weight < 0 or self.lexical_weight < 0 or self.vector_weight + self.lexical_weight <= 0:
            raise QueryError("fusion weights must be non-negative and not both zero")
        if self.rank_constant < 0 or self.depth < 1:
            raise QueryError("the rank constant must be non-negative and the depth at least 1")


@dataclass(frozen=True)
class Explanation:
    """Why an item was returned: where it ranked in each list and which of its fields matched the words.

    Attributes:
        mode: the mode the query ran in.
        vector_rank, vector_score: 1-based rank and cosine similarity in the vector list (``None``: absent).
        lexical_rank, lexical_score: 1-based rank and BM25 score in the lexical list (``None``: absent).
        fused_score: the reciprocal-rank fusion score (hybrid mode only).
        matched_fields: field name -> excerpt with the matched words between
            :data:`indexer.lexical.MARK_OPEN` and ``MARK_CLOSE``.
    """

    mode: SearchMode
    vector_rank: int | None = None
    vector_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None
    fused_score: float | None = None
    matched_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryPart:
    """One weighted part of a combined query; a negative weight pushes results away from it.

    Exactly one of ``text``, ``image``, ``item_id`` or ``vector`` is set.
    """

    text: str | None = None
    image: Image.Image | None = field(default=None, compare=False)
    item_id: str | None = None
    vector: np.ndarray | None = field(default=None, compare=False)
    weight: float = 1.0


@dataclass(frozen=True)
class SearchOptions:
    """Paging, filtering and shaping of a result list.

    Attributes:
        k: hits per page.
        offset: hits to skip (page * k).
        min_score: drop hits whose cosine similarity is below this.
        where: metadata filter.
        collapse_by_product: one hit per ``product_id`` (its best image); items without one stand alone.
        exclude_ids: external ids never returned (e.g. the query item of a similar-items request).
        mode: ``hybrid`` (default), ``vector`` or ``lexical``; see :mod:`search.engine`. ``min_score`` always
            applies to the cosine similarity of the vector list.
        explain: attach an :class:`Explanation` to every hit.
        fusion: the hybrid fusion settings; ``None`` uses the engine's.
    """

    k: int = 10
    offset: int = 0
    min_score: float | None = None
    where: ItemFilter = field(default_factory=ItemFilter)
    collapse_by_product: bool = False
    exclude_ids: tuple[str, ...] = ()
    mode: SearchMode = "hybrid"
    explain: bool = False
    fusion: Fusion | None = None

    @property
    def need(self) -> int:
        """Hits the list must hold for this page to be full: ``offset + k``."""
        return self.offset + self.k


@dataclass(frozen=True)
class _HitLead:
    """The fields of :class:`Hit` before its catalog fields (see :mod:`catalens.indexer.records`)."""

    id: str
    score: float


@dataclass(frozen=True, kw_only=True)
class Hit(CatalogFields, _HitLead):
    """One result: the item's catalog data (:class:`CatalogFields`) and its score.

    ``score`` is the cosine similarity in vector mode, the BM25 score in lexical mode and the fused
    reciprocal-rank score in hybrid mode; ``explanation`` is set when the query asked for it.
    """

    source: str
    width: int | None
    height: int | None
    explanation: Explanation | None = None


@dataclass(frozen=True)
class SearchResult:
    """A page of hits, with the index generation that answered it."""

    hits: list[Hit]
    k: int
    offset: int
    generation: int | None


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float
    score: float


@dataclass(frozen=True)
class Classification:
    """Zero-shot predictions for one item (``id`` is ``None`` for an uploaded image), best first."""

    id: str | None
    predictions: list[Prediction]


def _hit(item: StoredItem, score: float) -> Hit:
    """A hit carrying ``item``'s catalog fields (every :class:`Hit` field the stored item has) and ``score``."""
    copied = {f.name: getattr(item, f.name) for f in fields(Hit) if f.name not in ("score", "explanation")}
    return Hit(score=score, **copied)


def check_page(options: SearchOptions) -> None:
    """Refuse a page or mode no search can answer.

    Raises:
        QueryError: ``k`` below 1, a negative offset, a ``min_score`` that is not a number (NaN, infinite),
            an inverted price range or an unknown mode.
    """
    if options.k < 1 or options.offset < 0:
        raise QueryError("k must be at least 1 and offset at least 0")
    if options.min_score is not None and not math.isfinite(options.min_score):
        raise QueryError("min_score must be a finite number")
    low, high = options.where.price_min, options.where.price_max
    if any(bound is not None and not math.isfinite(bound) for bound in (low, high)):
        raise QueryError("price bounds must be finite numbers")
    if low is not None and high is not None and low > high:
        raise QueryError(f"the price range {low:g}..{high:g} is empty: its minimum exceeds its maximum")
    if options.mode not in SEARCH_MODES:
        raise QueryError(f"unknown search mode {options.mode!r}; choose one of {', '.join(SEARCH_MODES)}")


def list_depth(options: SearchOptions) -> int:
    """Hits to rank before collapsing so that a collapsed page is most likely still full."""
    return options.need * (4 if options.collapse_by_product else 1)


def collapse(hits: list[Hit], by_product: bool) -> list[Hit]:
    """Keep each product's best hit (items without a product id stand alone)."""
    if not by_product:
        return hits
    seen: set[str] = set()
    kept = []
    for hit in hits:
        if hit.product_id:
            if hit.product_id in seen:
                continue
            seen.add(hit.product_id)
        kept.append(hit)
    return kept
