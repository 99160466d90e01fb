"""The query engine: text, image and combined queries, similar items and zero-shot classification.

The engine holds an immutable :class:`_Snapshot` of the store's current index generation plus the changes
made after it was built (the *delta*: items embedded since, searched exactly, and keys to hide in the
index). Queries take a reference to the snapshot once and use only it, so :meth:`SearchEngine.refresh`
can swap in a new generation at any moment without failing or mixing an in-flight query.

Queries run in one of three modes: ``vector`` (cosine similarity of embeddings), ``lexical`` (BM25 over the
store's FTS5 index of titles, descriptions, attributes, captions and OCR text) or ``hybrid`` (the default:
both lists fused by reciprocal rank, so a brand name printed on a box and a visual description both count).
Image-only and item-only queries have no words, so hybrid answers them from vectors alone.

Filtered queries always return ``k`` hits when ``k`` items match: small match sets are scored exactly from
the store's vectors; larger ones are searched in FAISS with an id selector; exclusions and collapsing by
product over-fetch until enough distinct hits are found or the catalog is exhausted.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import faiss
import numpy as np
from PIL import Image

from catalens.indexer.faiss_index import read_index
from catalens.indexer.lexical import match_expression
from catalens.indexer.store import CatalogStore, ItemFilter, StoredItem
from catalens.models import ImageTextEncoder, LoadOptions, ModelRegistry, default_registry
from catalens.search.errors import ItemNotFoundError, ItemNotIndexedError, QueryError

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a product photo of a {}.",
    "a photo of the {}, a product for sale.",
    "a close-up photo of a {}.",
)
EXACT_FILTER_LIMIT = 20_000
MAX_WIDENING = 4
MAX_LABELS = 1000

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
        mode: ``hybrid`` (default), ``vector`` or ``lexical``; see the module docstring. ``min_score`` always
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


@dataclass(frozen=True)
class Hit:
    """One result: the item's catalog data and its score.

    ``score`` is the cosine similarity in vector mode, the BM25 score in lexical mode and the fused
    reciprocal-rank score in hybrid mode; ``explanation`` is set when the query asked for it.
    """

    id: str
    score: float
    product_id: str | None
    source: str
    title: str | None
    description: str | None
    category: str | None
    price: float | None
    attributes: dict[str, Any]
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


@dataclass(frozen=True)
class _Snapshot:
    generation: int | None
    index: Any
    index_count: int
    seq: int
    delta_keys: np.ndarray
    delta_vectors: np.ndarray
    hidden: np.ndarray  # keys to skip in ``index``: removed or re-embedded after it was built

    @property
    def size(self) -> int:
        return self.index_count + len(self.delta_keys)


def _empty_keys() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


class SearchEngine:
    """Answers queries over one store with one loaded model; safe to share between threads."""

    def __init__(
        self,
        store: CatalogStore,
        encoder: ImageTextEncoder,
        *,
        exact_filter_limit: int = EXACT_FILTER_LIMIT,
        search_threads: int = 1,
        fusion: Fusion | None = None,
    ) -> None:
        if encoder.spec != store.manifest.model:
            raise QueryError(f"the store holds {store.manifest.model!r} vectors, the model is {encoder.spec!r}")
        self.store = store
        self.encoder = encoder
        self._exact_limit = exact_filter_limit
        self._search_threads = search_threads
        self.fusion = fusion or Fusion()
        self._lock = threading.Lock()
        # One forward pass at a time: each already uses every core (or the whole GPU); concurrent passes
        # from the service's thread pool would only oversubscribe the cores and raise every request's latency.
        self._model_lock = threading.Lock()
        self._labels: OrderedDict[tuple[tuple[str, ...], tuple[str, ...]], np.ndarray] = OrderedDict()
        self._manifest_stamp: int | None = -1
        self._snapshot = self._load_snapshot()

    @classmethod
    def open(
        cls,
        store_path: str | os.PathLike[str],
        *,
        device: str = "auto",
        registry: ModelRegistry | None = None,
        encoder: ImageTextEncoder | None = None,
        fusion: Fusion | None = None,
        text_encoder: str | None = None,
        allow_unpaired: bool = False,
    ) -> SearchEngine:
        """Open a store and load the model its vectors were made with.

        Args:
            text_encoder: a text-encoder spec to answer text queries with instead of the model's own text
                tower, e.g. a multilingual model aligned to the store's image tower (see
                :mod:`models.text_encoders` for the pairing rules).
            allow_unpaired: accept a text encoder not registered as aligned to the store's model.

        Raises:
            StoreNotFoundError, StoreVersionError, StoreCorruptError, ModelError.
        """
        store = CatalogStore.open(store_path)
        try:
            options = LoadOptions(device=device)
            if encoder is None:
                encoder = (registry or default_registry()).load(store.manifest.model, options)
            if text_encoder:
                from catalens.models.text_encoders import pair_text_encoder

                encoder = pair_text_encoder(encoder, text_encoder, options, allow_unpaired=allow_unpaired)
            return cls(store, encoder, fusion=fusion)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> SearchEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generations -------------------------------------------------------------------------------------

    @property
    def generation(self) -> int | None:
        return self._snapshot.generation

    @property
    def size(self) -> int:
        """Items searchable now (the store's vectors; the snapshot plus its delta covers exactly these)."""
        return self.store.vector_count()

    def _load_snapshot(self) -> _Snapshot:
        self._manifest_stamp = self.store.manifest_stamp()
        self.store.reload_manifest()
        state = self.store.manifest.index
        path = self.store.index_path()
        index = read_index(path) if path is not None and path.is_file() else None
        seq = state.seq if index is not None and state is not None else 0
        return self._with_delta(state.generation if index is not None and state else None, index, seq)

    def _with_delta(self, generation: int | None, index: Any, seq: int) -> _Snapshot:
        keys, vectors, removed = self.store.changes_since(seq)
        hidden = np.union1d(removed, keys) if index is not None else _empty_keys()
        return _Snapshot(generation, index, int(index.ntotal) if index is not None else 0, seq, keys, vectors, hidden)

    def refresh(self) -> bool:
        """Swap in a newly published index generation, if there is one; returns whether it did.

        In-flight queries keep the snapshot they started with.

        Raises:
            QueryError: the store now holds another model's vectors (rebuilt); the current snapshot stays.
        """
        stamp = self.store.manifest_stamp()
        if stamp is None or stamp == self._manifest_stamp:
            return False
        published = self.store.read_published_manifest()
        if published.model != self.encoder.spec:
            raise QueryError(
                f"the store was rebuilt with model {published.model!r}; this engine holds {self.encoder.spec!r} "
                "and keeps serving its current generation: restart the service to serve the new model"
            )
        with self._lock:
            before = self._snapshot.generation
            self._snapshot = self._load_snapshot()
            return self._snapshot.generation != before

    def apply_changes(self) -> None:
        """Pick up items added or removed in the store since the snapshot (after this process's writes)."""
        with self._lock:
            snap = self._snapshot
            self._snapshot = self._with_delta(snap.generation, snap.index, snap.seq)

    # -- queries -----------------------------------------------------------------------------------------

    def embed_query(self, parts: Sequence[QueryPart]) -> np.ndarray:
        """Combine weighted parts into one unit query vector.

        Raises:
            QueryError: no parts, a part with nothing in it, or parts that cancel out.
            ItemNotFoundError, ItemNotIndexedError: an ``item_id`` part names no usable item.
        """
        if not parts:
            raise QueryError("the query is empty")
        total = np.zeros(self.encoder.dim, dtype=np.float32)
        for part in parts:
            total += np.float32(part.weight) * self._embed_part(part)
        norm = float(np.linalg.norm(total))
        if norm < 1e-6:
            raise QueryError("the query parts cancel each other out")
        return total / norm

    def _embed_part(self, part: QueryPart) -> np.ndarray:
        if part.vector is not None:
            vector = np.asarray(part.vector, dtype=np.float32).reshape(-1)
            if vector.shape[0] != self.encoder.dim:
                raise QueryError(f"a query vector needs {self.encoder.dim} dimensions, got {vector.shape[0]}")
            return vector / max(float(np.linalg.norm(vector)), 1e-12)
        if part.image is not None:
            with self._model_lock:
                return self.encoder.encode_images([part.image])[0]
        if part.item_id is not None:
            return self.item_vector(part.item_id)
        if part.text is not None and part.text.strip():
            with self._model_lock:
                return self.encoder.encode_texts([part.text.strip()])[0]
        raise QueryError("a query part needs text, an image, an item id or a vector")

    def item_vector(self, item_id: str) -> np.ndarray:
        """The stored embedding of an item.

        Raises:
            ItemNotFoundError, ItemNotIndexedError.
        """
        item = self.store.get_item(item_id)
        if item is None:
            raise ItemNotFoundError(item_id)
        keys, vectors = self.store.vectors_for([item.key])
        if not len(keys):
            raise ItemNotIndexedError(item_id, item.error)
        return vectors[0]

    def search(self, parts: Sequence[QueryPart], options: SearchOptions | None = None) -> SearchResult:
        """Search with a (combined) query; see :class:`SearchOptions` for the mode, paging and filters.

        The lexical side searches the words of the positively weighted text parts; a query without words
        is answered from vectors in hybrid mode.

        Raises:
            QueryError: a bad query or options, or lexical mode without words.
            ItemNotFoundError, ItemNotIndexedError: an ``item_id`` part names no usable item.
        """
        options = options or SearchOptions()
        _check_page(options)
        words = " ".join(p.text for p in parts if p.text and p.text.strip() and p.weight > 0)
        match = match_expression(words) if words else None
        if options.mode == "lexical":
            if match is None:
                raise QueryError("lexical search needs words to look for; use the vector or hybrid mode")
            return self._search_lexical(match, options)
        if options.mode == "hybrid" and match is not None:
            return self._search_hybrid(self.embed_query(parts), match, options)
        return self.search_vector(self.embed_query(parts), options)

    def search_text(self, text: str, options: SearchOptions | None = None) -> SearchResult:
        return self.search([QueryPart(text=text)], options)

    def similar(self, item_id: str, options: SearchOptions | None = None) -> SearchResult:
        """Items most like a stored item, the item itself excluded."""
        options = options or SearchOptions()
        exclude = (*options.exclude_ids, item_id)
        return self.search_vector(self.item_vector(item_id), replace(options, exclude_ids=exclude))

    def search_vector(self, query: np.ndarray, options: SearchOptions | None = None) -> SearchResult:
        """Rank items by cosine similarity to a unit query vector (whatever ``options.mode`` says)."""
        options = options or SearchOptions()
        _check_page(options)
        snap = self._snapshot
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        allowed = None if options.where.is_empty else self.store.matching_keys(options.where)
        excluded = self._keys_of(options.exclude_ids)
        if allowed is not None:
            allowed = np.setdiff1d(allowed, excluded, assume_unique=True)
        need = options.offset + options.k
        if allowed is not None and len(allowed) <= self._exact_limit:
            ranked = self._exact(query, allowed)
            hits = self._resolve(ranked, options, excluded)
        else:
            fetch = need * (4 if options.collapse_by_product else 1) + len(excluded)
            for attempt in range(MAX_WIDENING + 1):
                ranked, exhaustive = self._approximate(snap, query, fetch, allowed, attempt)
                hits = self._resolve(ranked, options, excluded)
                if len(hits) >= need or exhaustive:
                    break
                fetch = min(fetch * 4, max(snap.size, 1))
            else:
                if allowed is not None:  # an approximate index could not reach enough matches: be exact
                    hits = self._resolve(self._exact(query, allowed), options, excluded)
        page = hits[options.offset : need]
        if options.explain:
            page = [
                replace(h, explanation=Explanation("vector", vector_rank=rank, vector_score=h.score))
                for rank, h in enumerate(page, start=options.offset + 1)
            ]
        return SearchResult(page, options.k, options.offset, snap.generation)

    def _lexical_ranked(self, match: str, options: SearchOptions, depth: int) -> list[Hit]:
        """The best ``depth`` full-text matches as hits scored by BM25, filters and exclusions applied."""
        excluded = set(options.exclude_ids)
        matches = self.store.lexical_search(match, options.where, depth + len(excluded))
        items = self.store.get_items(m.key for m in matches)
        hits = [_hit(items[m.key], m.score) for m in matches if m.key in items]
        return [h for h in hits if h.id not in excluded][:depth]

    def _search_lexical(self, match: str, options: SearchOptions) -> SearchResult:
        need = options.offset + options.k
        depth = need * (4 if options.collapse_by_product else 1)
        hits = _collapse(self._lexical_ranked(match, options, depth), options.collapse_by_product)
        page = hits[options.offset : need]
        if options.explain:
            fields_of = self._matched_fields(match, page)
            page = [
                replace(
                    h,
                    explanation=Explanation(
                        "lexical", lexical_rank=rank, lexical_score=h.score, matched_fields=fields_of.get(h.id, {})
                    ),
                )
                for rank, h in enumerate(page, start=options.offset + 1)
            ]
        return SearchResult(page, options.k, options.offset, self._snapshot.generation)

    def _matched_fields(self, match: str, hits: Sequence[Hit]) -> dict[str, dict[str, str]]:
        """Per hit id, the fields ``match`` hits with a marked-up excerpt of each."""
        keys = {item.key: item.id for item in self.store.get_items_by_id(h.id for h in hits).values()}
        snippets = self.store.lexical_snippets(match, keys)
        return {keys[key]: found for key, found in snippets.items()}

    def _search_hybrid(self, query: np.ndarray, match: str, options: SearchOptions) -> SearchResult:
        """Fuse the vector and the lexical lists by reciprocal rank, then collapse and page the fused list."""
        fusion = options.fusion or self.fusion
        need = options.offset + options.k
        depth = max(fusion.depth, need * (4 if options.collapse_by_product else 1))
        generation = self._snapshot.generation
        listed = replace(options, k=depth, offset=0, collapse_by_product=False, explain=False)
        vector_hits = self.search_vector(query, listed).hits
        lexical_hits = self._lexical_ranked(match, options, depth)
        vector_rank = {h.id: rank for rank, h in enumerate(vector_hits, start=1)}
        lexical_rank = {h.id: rank for rank, h in enumerate(lexical_hits, start=1)}
        by_id = {h.id: h for h in lexical_hits} | {h.id: h for h in vector_hits}
        cosine = {h.id: h.score for h in vector_hits}
        bm25 = {h.id: h.score for h in lexical_hits}

        def fused(item_id: str) -> float:
            score = 0.0
            if item_id in vector_rank:
                score += fusion.vector_weight / (fusion.rank_constant + vector_rank[item_id])
            if item_id in lexical_rank:
                score += fusion.lexical_weight / (fusion.rank_constant + lexical_rank[item_id])
            return score

        scores = {item_id: fused(item_id) for item_id in by_id}
        # Ties (e.g. one list weighted zero) keep the vector order, then the lexical order.
        order = sorted(by_id, key=lambda i: (-scores[i], vector_rank.get(i, depth + 1), lexical_rank.get(i, depth + 1)))
        ranked = [replace(by_id[i], score=scores[i]) for i in order if scores[i] > 0]
        page = _collapse(ranked, options.collapse_by_product)[options.offset : need]
        if options.explain:
            fields_of = self._matched_fields(match, page)
            page = [
                replace(
                    h,
                    explanation=Explanation(
                        "hybrid",
                        vector_rank=vector_rank.get(h.id),
                        vector_score=cosine.get(h.id),
                        lexical_rank=lexical_rank.get(h.id),
                        lexical_score=bm25.get(h.id),
                        fused_score=h.score,
                        matched_fields=fields_of.get(h.id, {}),
                    ),
                )
                for h in page
            ]
        return SearchResult(page, options.k, options.offset, generation)

    def _keys_of(self, ids: Sequence[str]) -> np.ndarray:
        keys = [item.key for item in self.store.get_items_by_id(ids).values()]
        return np.unique(np.asarray(keys, dtype=np.int64))

    def _exact(self, query: np.ndarray, allowed: np.ndarray) -> list[tuple[int, float]]:
        keys, vectors = self.store.vectors_for(allowed.tolist())
        if not len(keys):
            return []
        scores = vectors @ query
        order = np.argsort(-scores, kind="stable")
        return [(int(keys[i]), float(scores[i])) for i in order]

    def _approximate(
        self, snap: _Snapshot, query: np.ndarray, fetch: int, allowed: np.ndarray | None, attempt: int
    ) -> tuple[list[tuple[int, float]], bool]:
        """Top ``fetch`` candidates from the index and the delta; also whether nothing more can be found.

        Each ``attempt`` widens the approximate search (more IVF lists probed, a larger HNSW beam), so
        selective filters reach enough matches.
        """
        found: list[tuple[int, float]] = []
        exhaustive = True
        if snap.index is not None and snap.index_count:
            n = min(fetch, snap.index_count)
            params, complete = _search_params(snap.index, allowed, snap.hidden, n, attempt)
            # One query at a time is latency-bound, and right after encoding the model's OpenMP workers are
            # still spinning: a second FAISS thread team fighting them for the cores made text queries ~3 ms
            # slower on 2 cores (measured), more than a second search thread gains. The setting is per thread.
            faiss.omp_set_num_threads(self._search_threads)
            scores, ids = snap.index.search(query[None, :], n, params=params)
            found.extend((int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0)
            exhaustive = complete and (len(found) < n or n >= snap.index_count)
        if len(snap.delta_keys):
            mask = np.ones(len(snap.delta_keys), dtype=bool)
            if allowed is not None:
                mask &= np.isin(snap.delta_keys, allowed)
            scores = snap.delta_vectors[mask] @ query
            found.extend(zip(snap.delta_keys[mask].tolist(), scores.tolist(), strict=True))
        found.sort(key=lambda pair: -pair[1])
        return found[:fetch], exhaustive

    def _resolve(self, ranked: list[tuple[int, float]], options: SearchOptions, excluded: np.ndarray) -> list[Hit]:
        items = self.store.get_items(key for key, _ in ranked)
        skip = set(excluded.tolist())
        hits: list[Hit] = []
        for key, score in ranked:
            item = items.get(key)
            if item is None or item.status != "indexed" or key in skip:
                continue  # deleted since the snapshot was taken
            if options.min_score is not None and score < options.min_score:
                break
            hits.append(_hit(item, score))
        return _collapse(hits, options.collapse_by_product)

    # -- zero-shot classification --------------------------------------------------------------------------

    def label_vectors(self, labels: Sequence[str], templates: Sequence[str] | None = None) -> np.ndarray:
        """One unit vector per label: the mean of its prompt-template embeddings (cached per label set).

        Raises:
            QueryError: no labels, duplicate or empty labels, or a template without ``{}``.
        """
        clean = tuple(label.strip() for label in labels)
        if not clean or any(not label for label in clean):
            raise QueryError("give at least one non-empty label")
        if len(set(clean)) != len(clean):
            raise QueryError("labels must be unique")
        if len(clean) > MAX_LABELS:
            raise QueryError(f"at most {MAX_LABELS} labels")
        prompts = tuple(templates) if templates else DEFAULT_TEMPLATES
        if any("{}" not in t for t in prompts):
            raise QueryError("every template needs a {} placeholder for the label")
        key = (clean, prompts)
        with self._lock:
            cached = self._labels.get(key)
            if cached is not None:
                self._labels.move_to_end(key)
                return cached
        texts = [t.format(label) for label in clean for t in prompts]
        with self._model_lock:
            embedded = self.encoder.encode_texts(texts).reshape(len(clean), len(prompts), -1).mean(axis=1)
        vectors = embedded / np.linalg.norm(embedded, axis=1, keepdims=True)
        with self._lock:
            self._labels[key] = vectors
            while len(self._labels) > 64:
                self._labels.popitem(last=False)
        return vectors

    def classify_vectors(
        self,
        vectors: np.ndarray,
        labels: Sequence[str],
        templates: Sequence[str] | None = None,
        top_k: int = 3,
    ) -> list[list[Prediction]]:
        """Zero-shot predictions for image vectors: softmax over ``logit_scale * cosine``."""
        label_vectors = self.label_vectors(labels, templates)
        names = [label.strip() for label in labels]
        scores = np.atleast_2d(vectors) @ label_vectors.T
        logits = self.encoder.logit_scale * scores
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        top = max(1, min(top_k, len(names)))
        results = []
        for row_p, row_s in zip(probs, scores, strict=True):
            order = np.argsort(-row_p, kind="stable")[:top]
            results.append([Prediction(names[i], float(row_p[i]), float(row_s[i])) for i in order])
        return results

    def classify_items(
        self, item_ids: Sequence[str], labels: Sequence[str], templates: Sequence[str] | None = None, top_k: int = 3
    ) -> list[Classification]:
        """Classify stored items by id.

        Raises:
            ItemNotFoundError, ItemNotIndexedError: for the first unusable id.
        """
        vectors = np.stack([self.item_vector(i) for i in item_ids]) if item_ids else np.zeros((0, self.encoder.dim))
        predictions = self.classify_vectors(vectors, labels, templates, top_k) if len(item_ids) else []
        return [Classification(i, p) for i, p in zip(item_ids, predictions, strict=True)]

    def classify_image(
        self, image: Image.Image, labels: Sequence[str], templates: Sequence[str] | None = None, top_k: int = 3
    ) -> Classification:
        with self._model_lock:
            vector = self.encoder.encode_images([image])
        return Classification(None, self.classify_vectors(vector, labels, templates, top_k)[0])


def _check_page(options: SearchOptions) -> None:
    if options.k < 1 or options.offset < 0:
        raise QueryError("k must be at least 1 and offset at least 0")
    if options.mode not in SEARCH_MODES:
        raise QueryError(f"unknown search mode {options.mode!r}; choose one of {', '.join(SEARCH_MODES)}")


def _collapse(hits: list[Hit], by_product: bool) -> list[Hit]:
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


def _search_params(
    index: Any, allowed: np.ndarray | None, hidden: np.ndarray, k: int, attempt: int
) -> tuple[Any, bool]:
    """FAISS search parameters for ``allowed`` keys minus ``hidden`` ones, widened by ``attempt``.

    Returns the parameters and whether a search with them visits every vector (so fewer than ``k`` results
    mean there are no more matches).
    """
    lib: Any = faiss  # the SWIG constructors take keyword arguments that faiss's type stubs do not declare
    if allowed is not None:
        selector: Any = lib.IDSelectorBatch(np.setdiff1d(allowed, hidden, assume_unique=True))
    elif len(hidden):
        selector = lib.IDSelectorNot(lib.IDSelectorBatch(hidden))
    else:
        selector = None
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        ivf = None
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    if ivf is not None:
        nprobe = min(int(ivf.nlist), int(ivf.nprobe) * 4**attempt)
        params: Any = lib.SearchParametersIVF(sel=selector, nprobe=nprobe)
        complete = nprobe >= ivf.nlist
    elif isinstance(inner, faiss.IndexHNSW):
        params = lib.SearchParametersHNSW(sel=selector, efSearch=max(int(inner.hnsw.efSearch), k) * 2**attempt)
        complete = False
    else:
        params = lib.SearchParameters(sel=selector) if selector is not None else None
        complete = True
    if params is not None:
        params._keepalive = selector  # FAISS holds a raw pointer; keep the selector alive with the params
    return params, complete


def _hit(item: StoredItem, score: float) -> Hit:
    copied = {f.name: getattr(item, f.name) for f in fields(Hit) if f.name not in ("score", "explanation")}
    return Hit(score=score, **copied)
