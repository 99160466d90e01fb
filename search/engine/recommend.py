"""Recommendations: more like these examples, less like those, diversified, capped and grouped.

Two strategies, as Qdrant's recommend API has them:

- ``average``: one search for ``normalise(2·p̄ − n̄)``, where p̄ and n̄ are the weighted means of the positive
  and negative example vectors (``p̄`` alone without negatives, ``−n̄`` with negatives only).
- ``best_score``: the candidates are the union of each positive example's neighbours (``−n̄``'s for negatives
  only), searched in one batch, each scored exactly (vectors from the index's own storage when it keeps them
  in full, else from the store) against every example: ``pos = max_i w_i·cos(c, p_i)``,
  ``neg = max_j w_j·cos(c, n_j)`` (weights divided by the largest one), ``score = pos`` when ``pos > neg``,
  else ``−neg²``; with negatives only, ``−neg``.

The ranked list is then shaped (:mod:`.diversity`): MMR, caps per attribute and grouping, widening the list
when they leave the page short. The list is a :class:`~.pool.Pool` of keys, scores and the few attribute values
the shaping reads; whole item rows are read for the returned page only. Example ids that name no item, or an
item without a vector, are skipped and reported rather than failing the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import islice

import numpy as np

from catalens.indexer.records import CATALOG_FIELDS
from catalens.indexer.store import CatalogStore
from catalens.search.engine.diversity import Caps, Shape, group, pick
from catalens.search.engine.embedding import raw_query_vector
from catalens.search.engine.model_access import ModelGate
from catalens.search.engine.pool import Pool, PoolReader
from catalens.search.engine.retrieval import MAX_WIDENING, VectorRetriever
from catalens.search.engine.snapshot import Snapshot
from catalens.search.engine.types import (
    Example,
    HitGroup,
    Recommendation,
    RecommendOptions,
    SearchOptions,
    SkippedExample,
)
from catalens.search.engine.value_keys import ValueKeys, union_sorted
from catalens.search.errors import QueryError

#: Rounds of extending the ranked list before a page takes what it has (at most MAX_WIDENING of them x4).
MAX_ROUNDS = 10


@dataclass(frozen=True)
class Examples:
    """The usable examples of one side (positive or negative): unit vectors, weights and stored keys."""

    vectors: np.ndarray
    weights: np.ndarray
    item_ids: tuple[str, ...]
    keys: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.weights)

    def mean(self) -> np.ndarray:
        """The weighted mean of the vectors (not normalised)."""
        return (self.weights[:, None] * self.vectors).sum(axis=0) / self.weights.sum()


@dataclass(frozen=True)
class _Ask:
    """What one recommendation searches with: its snapshot, query (``average``, or −n̄), examples and options."""

    snap: Snapshot
    query: np.ndarray | None
    pos: Examples
    neg: Examples
    options: SearchOptions
    excluded: np.ndarray
    banned: tuple[int, ...]
    with_vectors: bool
    by_average: bool = True


def average_query(positive: Examples, negative: Examples) -> np.ndarray:
    """The ``average`` strategy's unit query vector (Qdrant's ``average_vector``).

    Raises:
        QueryError: the examples cancel each other out.
    """
    if len(positive) and len(negative):
        query = 2 * positive.mean() - negative.mean()
    elif len(positive):
        query = positive.mean()
    else:
        query = -negative.mean()
    norm = float(np.linalg.norm(query))
    if norm < 1e-6:
        raise QueryError("the positive and negative examples cancel each other out")
    return (query / norm).astype(np.float32)


def best_scores(candidates: np.ndarray, positive: Examples, negative: Examples) -> np.ndarray:
    """The ``best_score`` strategy's score of each candidate vector (see the module's docstring)."""
    top = float(max(positive.weights.max(initial=0.0), negative.weights.max(initial=0.0)))
    neg = (candidates @ negative.vectors.T * (negative.weights / top)).max(axis=1) if len(negative) else None
    if not len(positive):
        assert neg is not None
        return -neg
    pos = (candidates @ positive.vectors.T * (positive.weights / top)).max(axis=1)
    if neg is None:
        return pos
    return np.where(pos > neg, pos, -(neg**2))


class Recommender:
    """Answers :meth:`SearchEngine.recommend` over one store, through the engine's vector retriever."""

    def __init__(self, store: CatalogStore, retriever: VectorRetriever, model: ModelGate) -> None:
        """
        Args:
            store: where example items, their vectors and the candidates' vectors are read.
            retriever: ranks items by cosine similarity over a snapshot.
            model: embeds image examples (one forward pass at a time).
        """
        self._store = store
        self._retriever = retriever
        self._model = model
        self._value_keys = ValueKeys(store)

    def recommend(
        self,
        snap: Snapshot,
        positive: Sequence[Example | str],
        negative: Sequence[Example | str],
        options: SearchOptions,
        settings: RecommendOptions,
    ) -> Recommendation:
        """The page of recommendations ``options`` and ``settings`` ask for (see :meth:`SearchEngine.recommend`).

        Raises:
            QueryError: no examples, none usable, examples that cancel out, or a bad raw vector.
        """
        if not positive and not negative:
            raise QueryError("a recommendation needs at least one positive or negative example")
        skipped: dict[str, SkippedExample] = {}
        pos = self._resolve(snap, positive, skipped)
        neg = self._resolve(snap, negative, skipped)
        if not len(pos) and not len(neg):
            named = ", ".join(f"{s.item_id!r} ({s.reason})" for s in skipped.values())
            raise QueryError(f"none of the examples can be used: {named}")
        inputs = (*pos.item_ids, *neg.item_ids) if settings.exclude_inputs else ()
        banned = (*pos.keys, *neg.keys) if settings.exclude_inputs else ()
        given = self._retriever.keys_of(options.exclude_ids)
        options = replace(options, exclude_ids=(*options.exclude_ids, *inputs))
        # best_score with negatives only draws its candidates from around −n̄, the average query
        query = average_query(pos, neg) if settings.strategy == "average" or not len(pos) else None
        excluded = np.union1d(given, np.asarray(banned, dtype=np.int64))  # looked up once, not per search
        by_average = settings.strategy == "average"
        ask = _Ask(snap, query, pos, neg, options, excluded, banned, settings.diversity > 0, by_average)
        return self._page(ask, settings, list(skipped.values()))

    def _page(self, ask: _Ask, settings: RecommendOptions, skipped: list[SkippedExample]) -> Recommendation:
        """Pick the page from a ranked list, extending the list until the page is full or nothing is left.

        A list is extended in one of two ways: when the caps retired whole values (every item of a brand
        over its cap), the next items are searched below the list with those values' items skipped in the
        index itself, however many they are (a brand can be a quarter of a catalog); otherwise a longer
        list is fetched (x4). The last round takes what it has. The list is a :class:`Pool` (keys, scores,
        the capped and grouped attributes' values, vectors for MMR): whole items are read for the page only.
        """
        snap, options = ask.snap, ask.options
        need, window = options.need, settings.pool(options.k)
        grouped = settings.group_by is not None
        shape = Shape(settings.diversity, window)
        names = [*settings.max_per, *([settings.group_by] if settings.group_by is not None else [])]
        reader = PoolReader(self._store, self._retriever, names, options)
        if grouped:
            depth = max(window, need * settings.group_size)
        elif settings.diversity > 0:
            depth = need + window
        else:  # a walk down the list: the caps go on below it (see above) when it runs short
            depth = 2 * need if settings.max_per else need
        listed = self._list(ask, reader, depth)
        widened = 0
        looked_up: dict[tuple[str, str], np.ndarray] = {}
        attempt = 0  # rounds of extending the list (picking again without gone items is not one: see Pool)
        while True:
            last = attempt >= MAX_ROUNDS - 1 or listed.complete or widened == MAX_WIDENING or depth >= snap.size
            caps = Caps(listed.values, settings.max_per)
            # grouped, the caps count the items placed in groups (see diversity.group), not every pick
            order = pick(
                listed.scores, listed.vectors, shape, Caps(listed.values, None) if grouped else caps, complete=last
            )
            if settings.group_by is not None:
                found, final = group(listed.values[settings.group_by], order, settings.group_size, need, caps)
                if final or last:
                    shown = found[options.offset : need]
                    pages = reader.page_hits(listed, [positions for _, positions in shown])
                    if pages is not None:
                        groups = [HitGroup(value, hits) for (value, _), hits in zip(shown, pages, strict=True)]
                        return Recommendation([], options.k, options.offset, snap.generation, skipped, groups)
                    listed = reader.without_gone(listed)  # gone since the snapshot: pick again without them
                    continue
            else:
                picks = list(islice(order, need))
                if len(picks) >= need or last:
                    pages = reader.page_hits(listed, [picks[options.offset : need]])
                    if pages is not None:
                        return Recommendation(pages[0], options.k, options.offset, snap.generation, skipped)
                    listed = reader.without_gone(listed)  # gone since the snapshot: pick again without them
                    continue
            attempt += 1
            denied = self._denied(caps.retired(), looked_up)
            if denied is None:  # short for another reason (or a cap on an unfilterable field): a longer list
                widened += 1
                depth = min(depth * 4, max(snap.size, 1))
                listed = self._list(ask, reader, depth)
            else:
                depth *= 2
                denied = union_sorted(denied, np.unique(np.asarray(listed.keys, dtype=np.int64)))
                # below the list, as many as the page may need are enough: the next round goes on below those
                least = None if grouped else max(1, need - len(picks))
                more = self._list(ask, reader, depth, denied, least)
                # collapsed and deduplicated across both (``listed`` stays as it is)
                listed = reader.shape(listed.then(more), ask.banned, cut=False)

    # -- the ranked list ---------------------------------------------------------------------------------

    def _list(
        self, ask: _Ask, reader: PoolReader, depth: int, denied: np.ndarray | None = None, least: int | None = None
    ) -> Pool:
        """At least ``depth`` candidates in relevance order (shaped by the options), with vectors for MMR; or
        at least ``least`` of the ``depth`` asked for, when a caller goes on below the list itself."""
        if ask.query is not None and (not len(ask.pos) or ask.by_average):
            return self._nearest(ask, ask.query, reader, depth, denied, least)
        return self._best_score(ask, reader, depth, denied, least)

    def _nearest(
        self,
        ask: _Ask,
        query: np.ndarray,
        reader: PoolReader,
        depth: int,
        denied: np.ndarray | None,
        least: int | None = None,
    ) -> Pool:
        """The query's nearest candidates, fetching more (as :meth:`VectorRetriever.ranked` does) until ``depth``
        of them are left after shaping or nothing more can be found."""
        options = ask.options
        fetch = depth * (4 if options.collapse_by_product or options.dedupe else 1)
        for _ in range(MAX_WIDENING + 1):
            found, exhaustive = self._retriever.nearest(ask.snap, query, options, fetch, denied, ask.excluded, least)
            pool = reader.read(ask.snap, found, exhaustive, ask.banned, vectors=ask.with_vectors)
            if len(pool) >= (depth if least is None else least) or pool.complete:
                break
            fetch = min(fetch * 4, max(ask.snap.size, 1))
        return pool

    def _denied(
        self, retired: list[tuple[str, str]], looked_up: dict[tuple[str, str], np.ndarray]
    ) -> np.ndarray | None:
        """Keys of the items having a retired ``(attribute, value)``; ``None`` when none is retired or one of
        them cannot be looked up by value (a catalog field other than ``category``).

        Args:
            looked_up: the keys of values already looked up by this request (filled in here).

        Only the catalog's values count (:class:`ValueKeys`), as in :func:`diversity.field_value`: an item an
        accepted tag gives the value is not capped, so it must not be hidden either.
        """
        if not retired or any(name in CATALOG_FIELDS and name != "category" for name, _ in retired):
            return None
        for pair in retired:
            if pair not in looked_up:
                looked_up[pair] = self._value_keys.keys(*pair)
        denied = np.zeros(0, dtype=np.int64)
        for pair in retired:
            denied = union_sorted(denied, looked_up[pair])
        return denied

    # -- examples ----------------------------------------------------------------------------------------

    def _resolve(
        self, snap: Snapshot, examples: Sequence[Example | str], skipped: dict[str, SkippedExample]
    ) -> Examples:
        """The usable examples' vectors; unknown or unindexed item ids go to ``skipped``."""
        if not examples:
            return Examples(np.zeros((0, self._model.dim), dtype=np.float32), np.zeros(0), (), ())
        given = [_example(e) for e in examples]
        stored = self._store.get_items_by_id(e.item_id for e in given if e.item_id is not None)
        # the snapshot's vectors (the index keeps them), as the candidates are compared with
        keys, vectors = self._retriever.vectors(snap, [item.key for item in stored.values()])
        vector_of = {int(k): v for k, v in zip(keys.tolist(), vectors, strict=True)}
        images = [e.image for e in given if e.image is not None]
        encoded = iter(self._model.encode_images(images) if images else ())
        rows: list[np.ndarray] = []
        weights: list[float] = []
        ids: list[str] = []
        item_keys: list[int] = []
        for example in given:
            if example.item_id is not None:
                item = stored.get(example.item_id)
                if item is None:
                    skipped.setdefault(example.item_id, SkippedExample(example.item_id, "not found"))
                    continue
                if item.key not in vector_of or item.status != "indexed":
                    reason = f"not indexed: {item.error}" if item.error else "not indexed"
                    skipped.setdefault(example.item_id, SkippedExample(example.item_id, reason))
                    continue
                rows.append(vector_of[item.key])
                ids.append(example.item_id)
                item_keys.append(item.key)
            elif example.vector is not None:
                vector = raw_query_vector(example.vector, self._model.dim)
                if not vector.any():
                    raise QueryError("an example vector must not be all zeros")
                rows.append(vector)
            else:
                rows.append(next(encoded))
            weights.append(float(example.weight))
        matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, self._model.dim), dtype=np.float32)
        return Examples(matrix, np.asarray(weights, dtype=np.float64), tuple(ids), tuple(item_keys))

    def _best_score(
        self, ask: _Ask, reader: PoolReader, depth: int, denied: np.ndarray | None = None, least: int | None = None
    ) -> Pool:
        """Candidates near any positive example (or −n̄ without positives), scored by the best-score rule and
        shaped by ``options``: at least ``depth`` of them before shaping, when there are that many."""
        pos, neg, options = ask.pos, ask.neg, ask.options
        if len(pos):
            queries = pos.vectors
        else:
            assert ask.query is not None
            queries = ask.query[None, :]
        # Without negatives, an item in the top n by best score is in its best example's top n (a nearer
        # neighbour of that example scores at least as high), so each example's depth suffices; negatives
        # push some of those down, hence twice as many.
        each = depth * (2 if len(neg) else 1) * (4 if options.collapse_by_product or options.dedupe else 1)
        union: set[int] = set()
        complete = True
        # every example in one index call: FAISS answers the rows in one pass
        searched = self._retriever.nearest_many(ask.snap, queries, options, each, denied, ask.excluded, least)
        for found, exhaustive in searched:
            union.update(key for key, _ in found)
            complete &= exhaustive
        keys, vectors = self._retriever.vectors(ask.snap, sorted(union))  # key order: ties stay in key order
        scores = best_scores(vectors, pos, neg) if len(keys) else np.zeros(0)
        order = np.argsort(-scores, kind="stable")
        # read only the items a page can reach: the list is best first, and widening asks for more
        reach = min(len(order), each)
        complete &= reach == len(order)
        top = order[:reach]
        ranked = [(int(keys[i]), float(scores[i])) for i in top]
        return reader.read(ask.snap, ranked, complete, ask.banned, vectors=vectors[top])


def _example(example: Example | str) -> Example:
    if isinstance(example, str):
        return Example(item_id=example)
    if isinstance(example, Example):
        return example
    raise QueryError(f"an example must be an item id or an Example, got {type(example).__name__}")
