"""The :class:`SearchEngine`: one object that answers every kind of query over one store and one model.

It composes small collaborators, one per concern: :class:`Snapshots` (the generation being searched and its
refresh), :class:`QueryEmbedder` (query parts to a vector), :class:`VectorRetriever` and
:class:`LexicalRetriever` (the two ranked lists), :func:`reciprocal_rank_fusion` (hybrid ranking) and
:class:`Classifier` (zero-shot labels). The engine itself only dispatches by mode and pages results.

The model is owned by one :class:`ModelGate`: queries, labels and the service's writes (through
:meth:`SearchEngine.encode_images`) all run their forward passes through it, one at a time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from catalens.indexer.lexical import match_expression
from catalens.indexer.store import CatalogStore
from catalens.indexer.weights_check import require_same_weights
from catalens.models import ImageTextEncoder, LoadOptions, ModelRegistry, default_registry
from catalens.search.engine.classification import Classifier, ClassifyLimits
from catalens.search.engine.embedding import QueryEmbedder
from catalens.search.engine.fusion import fusion_depth, reciprocal_rank_fusion
from catalens.search.engine.model_access import ModelGate
from catalens.search.engine.recommend import Recommender
from catalens.search.engine.retrieval import EXACT_FILTER_LIMIT, LexicalRetriever, VectorRetriever, dedupe_hits
from catalens.search.engine.snapshot import Snapshots
from catalens.search.engine.text_cache import DEFAULT_TEXT_CACHE_SIZE, TextVectorCache
from catalens.search.engine.types import (
    Classification,
    Example,
    Fusion,
    Prediction,
    QueryPart,
    Recommendation,
    RecommendOptions,
    SearchOptions,
    SearchResult,
    check_page,
    collapse,
)
from catalens.search.errors import QueryError


class SearchEngine:
    """Answers queries over one store with one loaded model; safe to share between threads.

    Attributes:
        store: the catalog store (the engine reads it; writers go through :class:`CatalogWriter`).
        encoder: the model the store's vectors were made with (or a text encoder paired with it).
        fusion: the hybrid fusion settings used when a query does not give its own; may be replaced.
    """

    def __init__(
        self,
        store: CatalogStore,
        encoder: ImageTextEncoder,
        *,
        exact_filter_limit: int = EXACT_FILTER_LIMIT,
        search_threads: int = 1,
        fusion: Fusion | None = None,
        classify_limits: ClassifyLimits | None = None,
        text_cache_size: int = DEFAULT_TEXT_CACHE_SIZE,
    ) -> None:
        """
        Args:
            store: an open store; the engine does not close it unless :meth:`close` is called.
            encoder: must have the spec the store's vectors were made with.
            exact_filter_limit: filters matching at most this many items are scored exactly.
            search_threads: threads each vector-index search may use.
            fusion: hybrid fusion settings (the measured defaults if ``None``).
            classify_limits: the most work one classification may ask for (the defaults if ``None``).
            text_cache_size: query texts and label prompts whose vectors are kept (0: none).

        Raises:
            QueryError: the encoder is not the store's model.
            StoreWeightsMismatchError: it is, by spec, but its weights are not the ones the store records.
        """
        if encoder.spec != store.manifest.model:
            raise QueryError(f"the store holds {store.manifest.model!r} vectors, the model is {encoder.spec!r}")
        require_same_weights(store.manifest, str(store.path), encoder)
        self.store = store
        self.encoder = encoder
        self.fusion = fusion or Fusion()
        # One forward pass at a time, for queries, labels and writes alike.
        self._model = ModelGate(encoder, text_cache=TextVectorCache(text_cache_size))
        self._embedder = QueryEmbedder(store, self._model)
        self._classifier = Classifier(self._model, classify_limits)
        self._vectors = VectorRetriever(store, exact_limit=exact_filter_limit, search_threads=search_threads)
        self._lexical = LexicalRetriever(store)
        self._recommender = Recommender(store, self._vectors, self._model)
        self._snapshots = Snapshots(store, encoder.spec)
        self._size = _VectorCount()

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
        classify_limits: ClassifyLimits | None = None,
        text_cache_size: int = DEFAULT_TEXT_CACHE_SIZE,
    ) -> SearchEngine:
        """Open a store and load the model its vectors were made with.

        Args:
            text_encoder: a text-encoder spec to answer text queries with instead of the model's own text
                tower, e.g. a multilingual model aligned to the store's image tower (see
                :mod:`models.text_encoders` for the pairing rules).
            allow_unpaired: accept a text encoder not registered as aligned to the store's model.
            classify_limits: the most work one classification may ask for (the defaults if ``None``).
            text_cache_size: query texts and label prompts whose vectors are kept (0: none).

        Raises:
            StoreNotFoundError, StoreVersionError, StoreCorruptError, ModelError.
            StoreWeightsMismatchError: the store's model spec now loads other weights than its vectors'.
        """
        store = CatalogStore.open(store_path)
        try:
            options = LoadOptions(device=device)
            if encoder is None:
                encoder = (registry or default_registry()).load(store.manifest.model, options)
            if text_encoder:
                from catalens.models.text_encoders import pair_text_encoder

                encoder = pair_text_encoder(encoder, text_encoder, options, allow_unpaired=allow_unpaired)
            return cls(store, encoder, fusion=fusion, classify_limits=classify_limits, text_cache_size=text_cache_size)
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
        return self._snapshots.current.generation

    @property
    def index_problem(self) -> str | None:
        """Why the current generation's index file is not the one served (and what stands in), or ``None``."""
        return self._snapshots.current.degraded

    @property
    def size(self) -> int:
        """Items searchable now (the store's vectors; the snapshot plus its delta covers exactly these).

        Counted again only when the store changed since the last count (a count reads every vector: 1.2 s
        at a million items, and ``/readyz`` asks on every probe).
        """
        return self._size.get(self.store)

    def refresh(self) -> bool:
        """Swap in a newly published index generation, if there is one; returns whether it did.

        In-flight queries keep the snapshot they started with.

        Raises:
            QueryError: the store now holds another model's vectors (rebuilt); the current snapshot stays.
        """
        return self._snapshots.refresh()

    def apply_changes(self) -> None:
        """Pick up items added or removed in the store since the snapshot (after this process's writes)."""
        self._snapshots.apply_changes()

    # -- the model ---------------------------------------------------------------------------------------

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed decoded images with the engine's model, serialised with every other forward pass.

        Returns:
            ``(len(images), dim)`` float32 unit vectors.
        """
        return self._model.encode_images(images)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with the engine's model, in chunks, serialised with every other forward pass.

        Returns:
            ``(len(texts), dim)`` float32 unit vectors.
        """
        return self._model.encode_texts(texts)

    @property
    def model_queue(self) -> int:
        """Forward passes running or waiting for the model right now (for metrics, and tests of fairness)."""
        return self._model.queued

    @property
    def classify_limits(self) -> ClassifyLimits:
        """The most work one classification may ask for."""
        return self._classifier.limits

    # -- queries -----------------------------------------------------------------------------------------

    def embed_query(self, parts: Sequence[QueryPart]) -> np.ndarray:
        """Combine weighted parts into one unit query vector.

        Raises:
            QueryError: no parts, a part with nothing in it, or parts that cancel out.
            ItemNotFoundError, ItemNotIndexedError: an ``item_id`` part names no usable item.
        """
        return self._embedder.embed(parts)

    def item_vector(self, item_id: str) -> np.ndarray:
        """The stored embedding of an item.

        Raises:
            ItemNotFoundError, ItemNotIndexedError.
        """
        return self._embedder.item_vector(item_id)

    def search(self, parts: Sequence[QueryPart], options: SearchOptions | None = None) -> SearchResult:
        """Search with a (combined) query; see :class:`SearchOptions` for the mode, paging and filters.

        The lexical side searches the words of the positively weighted text parts; a query without words
        is answered from vectors in hybrid mode.

        Raises:
            QueryError: a bad query or options, or lexical mode without words.
            ItemNotFoundError, ItemNotIndexedError: an ``item_id`` part names no usable item.
        """
        options = options or SearchOptions()
        check_page(options)
        words = " ".join(p.text for p in parts if p.text and p.text.strip() and p.weight > 0)
        match = match_expression(words) if words else None
        if options.mode == "lexical":
            if match is None:
                raise QueryError("lexical search needs words to look for; use the vector or hybrid mode")
            page = self._lexical.page(match, options)
            return SearchResult(page, options.k, options.offset, self._snapshots.current.generation)
        if options.mode == "hybrid" and match is not None:
            columns = self._lexical.fusion_columns(options.fusion or self.fusion)
            return self._search_hybrid(self.embed_query(parts), match, options, columns)
        return self.search_vector(self.embed_query(parts), options)

    def search_text(self, text: str, options: SearchOptions | None = None) -> SearchResult:
        return self.search([QueryPart(text=text)], options)

    def similar(self, item_id: str, options: SearchOptions | None = None) -> SearchResult:
        """Items most like a stored item, the item itself (and, with ``dedupe``, its near-duplicates) excluded.

        ``options.mode`` says how. ``vector`` ranks by the item's stored embedding alone. ``hybrid`` (the
        default) fuses that list with a "more like this" lexical list of the item's own words (title,
        description, attributes, OCR text, captions under hybrid's rule for captions that restate the vectors),
        as a typed query's two lists are fused: on the demo catalog the three nearest items share the item's
        shop category 0.49 of the time against 0.28 by vectors alone. ``lexical`` ranks by the words alone. An
        item without words is answered from vectors in hybrid mode.

        Raises:
            ItemNotFoundError, ItemNotIndexedError: no such item, or one without a vector.
            QueryError: bad options, or lexical mode for an item without words.
        """
        options = options or SearchOptions()
        check_page(options)
        query = self.item_vector(item_id)
        item = self.store.get_item(item_id) if options.dedupe or options.mode != "vector" else None
        banned = (item.key,) if item is not None and options.dedupe else ()
        options = replace(options, exclude_ids=(*options.exclude_ids, item_id))
        if options.mode == "vector" or item is None:
            return self._search_vector(query, options, banned)
        columns = None if options.mode == "lexical" else self._lexical.fusion_columns(options.fusion or self.fusion)
        match = self._lexical.more_like_this(item.key, columns)
        if match is None and options.mode == "lexical":
            raise QueryError(f"item {item_id!r} has no words to match; use the vector or hybrid mode")
        if match is None:
            return self._search_vector(query, options, banned)
        if options.mode == "lexical":
            page = self._lexical.page(match, options, banned_keys=banned, informative=True)
            return SearchResult(page, options.k, options.offset, self._snapshots.current.generation)
        return self._search_hybrid(query, match, options, columns, banned, informative=True)

    def search_vector(self, query: np.ndarray, options: SearchOptions | None = None) -> SearchResult:
        """Rank items by cosine similarity to a unit query vector (whatever ``options.mode`` says)."""
        return self._search_vector(query, options or SearchOptions())

    def _search_vector(self, query: np.ndarray, options: SearchOptions, banned: Sequence[int] = ()) -> SearchResult:
        check_page(options)
        snap = self._snapshots.current
        page = self._vectors.page(snap, query, options, banned_keys=banned)
        return SearchResult(page, options.k, options.offset, snap.generation)

    def recommend(
        self,
        positive: Sequence[Example | str],
        negative: Sequence[Example | str] = (),
        options: SearchOptions | None = None,
        recommend: RecommendOptions | None = None,
    ) -> Recommendation:
        """Items like the positive examples and unlike the negative ones (see :mod:`search.engine.recommend`).

        Args:
            positive, negative: stored item ids (weight 1) or :class:`Example` s (an item, a raw vector or an
                image, weighted); either side may be empty, not both.
            options: paging, filters, ``min_score`` (on the strategy's score), collapsing, exclusions, dedupe.
            recommend: the strategy, input exclusion, MMR diversity, caps per attribute and grouping.

        Returns:
            The page (``k`` hits, or ``k`` groups with ``group_by``), and the example ids that were skipped
            because they name no item or an item without a vector.

        Raises:
            QueryError: bad options, no examples, no usable example (naming the skipped ids), or examples
                that cancel each other out.
        """
        options = options or SearchOptions()
        check_page(options)
        settings = recommend or RecommendOptions()
        return self._recommender.recommend(self._snapshots.current, positive, negative, options, settings)

    def _search_hybrid(
        self,
        query: np.ndarray,
        match: str,
        options: SearchOptions,
        columns: Sequence[str] | None,
        banned: Sequence[int] = (),
        informative: bool = False,
    ) -> SearchResult:
        """Fuse the vector and the lexical lists by reciprocal rank, then collapse and page the fused list.

        The lexical list matches ``columns`` (:meth:`LexicalRetriever.fusion_columns`: it leaves out captions
        that restate the store's own vectors), only its informative matches with ``informative`` (a "more like
        this" list), and explanations show the fields it did match; with ``dedupe`` no near-duplicate of
        ``banned`` appears.
        """
        fusion = options.fusion or self.fusion
        depth = fusion_depth(fusion, options)
        snap = self._snapshots.current
        listed = replace(options, k=depth, offset=0, collapse_by_product=False, explain=False)
        fused = reciprocal_rank_fusion(
            self._vectors.page(snap, query, listed, banned_keys=banned),
            self._lexical.ranked(match, options, depth, columns, informative),
            fusion,
            depth,
        )
        ranked = collapse(fused.hits, options.collapse_by_product)
        if options.dedupe:
            ranked = dedupe_hits(self.store, ranked, banned)
        page = ranked[options.offset : options.need]
        if options.explain:
            page = fused.explain(page, self._lexical.matched_fields(match, page, columns))
        return SearchResult(page, options.k, options.offset, snap.generation)

    # -- zero-shot classification --------------------------------------------------------------------------

    def label_vectors(self, labels: Sequence[str], templates: Sequence[str] | None = None) -> np.ndarray:
        """One unit vector per label: the mean of its prompt-template embeddings (cached per label set).

        Raises:
            QueryError: no labels, duplicate or empty labels, or a template without ``{}``.
        """
        return self._classifier.label_vectors(labels, templates)

    def classify_vectors(
        self,
        vectors: np.ndarray,
        labels: Sequence[str],
        templates: Sequence[str] | None = None,
        top_k: int = 3,
    ) -> list[list[Prediction]]:
        """Zero-shot predictions for image vectors: softmax over ``logit_scale * cosine``."""
        return self._classifier.classify_vectors(vectors, labels, templates, top_k)

    def classify_items(
        self, item_ids: Sequence[str], labels: Sequence[str], templates: Sequence[str] | None = None, top_k: int = 3
    ) -> list[Classification]:
        """Classify stored items by id.

        Raises:
            ItemNotFoundError, ItemNotIndexedError: for the first unusable id.
        """
        vectors = np.stack([self.item_vector(i) for i in item_ids]) if item_ids else np.zeros((0, self.encoder.dim))
        return self._classifier.classify_items(item_ids, vectors, labels, templates, top_k)

    def classify_image(
        self, image: Image.Image, labels: Sequence[str], templates: Sequence[str] | None = None, top_k: int = 3
    ) -> Classification:
        """Zero-shot predictions for an uploaded image (its ``id`` is ``None``)."""
        return self._classifier.classify_image(image, labels, templates, top_k)


class _VectorCount:
    """The store's vector count, kept until its change stamp or model changes, so it is never stale.

    The stamp is read before counting: a commit landing during the count changes it, and the next call counts
    again. One count at a time; concurrent callers wait for it rather than each reading every vector.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[object, ...] | None = None
        self._count = 0

    def get(self, store: CatalogStore) -> int:
        with self._lock:
            key = (store.change_stamp(), store.manifest.model)
            if key != self._key:
                self._count = store.vector_count()
                self._key = key
            return self._count
