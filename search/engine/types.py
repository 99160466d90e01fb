"""The engine's value types: queries, options, hits and results, plus the small rules that shape a result list.

Everything here is a frozen dataclass (or a function over them) with no access to the store or the model, so
the HTTP schemas, the CLI and the evaluation code can import it without opening anything.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Iterable, Mapping, Sequence
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
    products (OCR). Lexical weight 1.25 with rank constant 10 kept every catalog within 92 % of the better
    single mode's MRR (94 % with the first catalens-mini), against 88 % for the textbook 1 and 60; with issue
    17's fourth catalens-mini it keeps 93.3 % in two runs on fresh stores, the grid's best (weight 1.25, rank
    constant 30, which came seventh with the third release) 93.6 %, and 1 and 60 92.5 %; such gaps flip between
    runs and releases (0.001-0.003), so the defaults stay. A weight above 1 also means a word match outranks a
    vector match of the same rank instead of tying with it.

    ``vector_captions``: whether the lexical list matches captions made from the store's own image vectors
    (the ``attributes`` captioner's zero-shot labels) when those are the only captions a store has. Off by
    default: such words restate the vector list, errors included, so fusing them counts one piece of evidence
    twice; on the demo catalog leaving them out lifted hybrid MRR from 0.883 to 0.908, and on its images without
    metadata from 0.524 to vector search's own 0.578 (``scripts/bench_hybrid.py``). Captions that read the
    pixels with another model (BLIP) always count, and lexical mode always matches every caption.
    """

    vector_weight: float = 1.0
    lexical_weight: float = 1.25
    rank_constant: float = 10.0
    depth: int = 100
    vector_captions: bool = False

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
        dedupe: keep one item per stored near-duplicate group (the best-ranked one; see ``catalens
            duplicates``), so a page never shows the same photo twice.
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
    dedupe: bool = False

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


#: The :class:`Hit` fields copied from a stored item (``dataclasses.fields`` is slow enough to matter per hit).
_COPIED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Hit) if f.name not in ("score", "explanation"))


def _hit(item: StoredItem, score: float) -> Hit:
    """A hit carrying ``item``'s catalog fields (every :class:`Hit` field the stored item has) and ``score``."""
    return Hit(score=score, **{name: getattr(item, name) for name in _COPIED_FIELDS})


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
    """Hits to rank before collapsing (or deduplicating) so that the page is most likely still full."""
    return options.need * (4 if options.collapse_by_product or options.dedupe else 1)


def first_positions(labels: Iterable[Hashable | None], banned: Iterable[Hashable] = ()) -> list[int]:
    """Positions to keep so that each label shows once, at its first (best-ranked) place.

    The one rule behind collapsing by product and near-duplicate removal: an unlabelled entry (``None``) is
    always kept, a label in ``banned`` never.
    """
    seen = set(banned)
    kept = []
    for position, label in enumerate(labels):
        if label is not None:
            if label in seen:
                continue
            seen.add(label)
        kept.append(position)
    return kept


def collapse_positions(hits: Sequence[Hit]) -> list[int]:
    """Positions of the hits :func:`collapse` keeps (each product's best; items without a product stand alone)."""
    return first_positions(hit.product_id or None for hit in hits)


def collapse(hits: list[Hit], by_product: bool) -> list[Hit]:
    """Keep each product's best hit (items without a product id stand alone)."""
    if not by_product:
        return hits
    return [hits[i] for i in collapse_positions(hits)]


# -- recommendations -------------------------------------------------------------------------------------------

RecommendStrategy = Literal["average", "best_score"]
RECOMMEND_STRATEGIES: tuple[RecommendStrategy, ...] = ("average", "best_score")
#: The most candidates a recommendation may ask to pick from (MMR, caps and groups).
MAX_CANDIDATES = 10_000
#: The largest default candidate pool (``max(5 * k, 50)`` up to this).
DEFAULT_CANDIDATES_CAP = 1_000


@dataclass(frozen=True)
class Example:
    """One example of a recommendation: a stored item, a raw vector or an image, with a weight (> 0).

    Exactly one of ``item_id``, ``vector`` or ``image`` is set.

    Raises:
        QueryError: none or several of them set, or a weight that is not a finite number above 0.
    """

    item_id: str | None = None
    vector: np.ndarray | None = field(default=None, compare=False)
    image: Image.Image | None = field(default=None, compare=False)
    weight: float = 1.0

    def __post_init__(self) -> None:
        given = sum(x is not None for x in (self.item_id, self.vector, self.image))
        if given != 1:
            raise QueryError("an example needs exactly one of an item id, a vector or an image")
        if not _is_number(self.weight):
            raise QueryError(f"an example's weight must be a finite number, got {self.weight!r}")
        if self.weight <= 0:
            raise QueryError(f"an example's weight must be above 0, got {self.weight:g}")


@dataclass(frozen=True)
class RecommendOptions:
    """How a recommendation ranks and shapes its list (paging, filters and dedupe are :class:`SearchOptions`).

    Attributes:
        strategy: ``average`` (one search for ``2·mean(positives) − mean(negatives)``) or ``best_score``
            (every candidate scored against each example, the best positive against the best negative).
        exclude_inputs: never return the example items (nor, with ``dedupe``, their near-duplicates).
        diversity: 0..1, the weight of novelty in MMR reranking (0: pure relevance; MMR's lambda is
            ``1 - diversity``).
        candidates: how many of the most relevant items MMR chooses among at each step (``None``:
            ``max(5 * k, 50)`` up to 1,000). It does not depend on ``offset``, so pages of one ``k`` continue
            each other.
        max_per: attribute -> at most this many results per value of it (``{"brand": 2}``); an attribute is a
            catalog field (``category``, ``product_id``) or else a name in ``attributes``.
        group_by: an attribute to group the results by; ``k`` and ``offset`` then count groups.
        group_size: the most hits per group.

    Raises:
        QueryError: an unknown strategy, a diversity outside 0..1, candidates outside 1..10,000, a cap or a
            group size below 1, or an empty attribute name.
    """

    strategy: RecommendStrategy = "average"
    exclude_inputs: bool = True
    diversity: float = 0.0
    candidates: int | None = None
    max_per: Mapping[str, int] = field(default_factory=dict)
    group_by: str | None = None
    group_size: int = 3

    def __post_init__(self) -> None:
        if self.strategy not in RECOMMEND_STRATEGIES:
            raise QueryError(
                f"unknown recommendation strategy {self.strategy!r}; choose one of {', '.join(RECOMMEND_STRATEGIES)}"
            )
        if not _is_number(self.diversity) or not 0.0 <= self.diversity <= 1.0:
            raise QueryError(f"diversity must be a number from 0 to 1, got {self.diversity!r}")
        if self.candidates is not None and (not _is_int(self.candidates) or not 1 <= self.candidates <= MAX_CANDIDATES):
            raise QueryError(f"candidates must be a whole number from 1 to {MAX_CANDIDATES:,}, got {self.candidates!r}")
        for name, cap in self.max_per.items():
            if not isinstance(name, str) or not name.strip():
                raise QueryError("a max_per attribute name must be a non-empty string")
            if not _is_int(cap) or cap < 1:
                raise QueryError(f"max_per[{name!r}] must be a whole number of at least 1, got {cap!r}")
        if self.group_by is not None and (not isinstance(self.group_by, str) or not self.group_by.strip()):
            raise QueryError("group_by must be a non-empty attribute name")
        if not _is_int(self.group_size) or self.group_size < 1:
            raise QueryError(f"group_size must be a whole number of at least 1, got {self.group_size!r}")

    def pool(self, k: int) -> int:
        """The candidates MMR chooses among at each step, for pages of ``k``."""
        return self.candidates or min(max(5 * k, 50), DEFAULT_CANDIDATES_CAP)

    @property
    def shaped(self) -> bool:
        """Whether the list is more than the relevance order: diversified, capped or grouped."""
        return self.diversity > 0 or bool(self.max_per) or self.group_by is not None


def _is_number(value: object) -> bool:
    """A finite real number (numpy's too), not a boolean."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    """A whole number (numpy's too), not a boolean."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class SkippedExample:
    """An example item that could not be used, and why (``"not found"``, or ``"not indexed"`` with the reason)."""

    item_id: str
    reason: str


@dataclass(frozen=True)
class HitGroup:
    """The best hits sharing one value of the ``group_by`` attribute."""

    value: str
    hits: list[Hit]


@dataclass(frozen=True)
class Recommendation:
    """A page of recommendations.

    Attributes:
        hits: the page, best first (empty when grouping: see ``groups``).
        k, offset: the page asked for (counting groups when grouping).
        generation: the index generation that answered.
        skipped: example items that were left out (unknown, or without a vector).
        groups: the page of groups when ``group_by`` was set, else ``None``.
    """

    hits: list[Hit]
    k: int
    offset: int
    generation: int | None
    skipped: list[SkippedExample]
    groups: list[HitGroup] | None = None
