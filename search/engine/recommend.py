"""Recommendations: more like these examples, less like those, diversified, capped and grouped.

Two strategies, as Qdrant's recommend API has them:

- ``average``: one search for ``normalise(2·p̄ − n̄)``, where p̄ and n̄ are the weighted means of the positive
  and negative example vectors (``p̄`` alone without negatives, ``−n̄`` with negatives only).
- ``best_score``: the candidates are the union of each positive example's neighbours (``−n̄``'s for negatives
  only), each scored exactly from the stored vectors against every example: ``pos = max_i w_i·cos(c, p_i)``,
  ``neg = max_j w_j·cos(c, n_j)`` (weights divided by the largest one), ``score = pos`` when ``pos > neg``,
  else ``−neg²``; with negatives only, ``−neg``.

The ranked list is then shaped (:mod:`.diversity`): MMR, caps per attribute and grouping, widening the list
when they leave the page short. Example ids that name no item, or an item without a vector, are skipped and
reported rather than failing the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import islice

import numpy as np

from catalens.indexer.records import CATALOG_FIELDS
from catalens.indexer.store import CatalogStore, ItemFilter
from catalens.search.engine.diversity import Caps, Shape, group, pick
from catalens.search.engine.embedding import raw_query_vector
from catalens.search.engine.model_access import ModelGate
from catalens.search.engine.retrieval import MAX_WIDENING, RankedList, VectorRetriever
from catalens.search.engine.snapshot import Snapshot
from catalens.search.engine.types import (
    Example,
    Explanation,
    Hit,
    HitGroup,
    Recommendation,
    RecommendOptions,
    SearchOptions,
    SkippedExample,
)
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
        pos = self._resolve(positive, skipped)
        neg = self._resolve(negative, skipped)
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
        list is fetched (x4). The last round takes what it has.
        """
        snap, options = ask.snap, ask.options
        need, window = options.need, settings.pool(options.k)
        grouped = settings.group_by is not None
        shape = Shape(settings.diversity, window)
        if grouped:
            depth = max(window, need * settings.group_size)
        elif settings.diversity > 0:
            depth = need + window
        else:  # a walk down the list: the caps go on below it (see above) when it runs short
            depth = 2 * need if settings.max_per else need
        listed, vectors = self._list(ask, depth)
        widened = 0
        looked_up: dict[tuple[str, str], np.ndarray] = {}
        for attempt in range(MAX_ROUNDS):
            last = attempt == MAX_ROUNDS - 1 or listed.complete or widened == MAX_WIDENING or depth >= snap.size
            caps = Caps(listed.hits, settings.max_per)
            # grouped, the caps count the items placed in groups (see diversity.group), not every pick
            order = pick(listed.hits, vectors, shape, Caps(listed.hits, None) if grouped else caps, complete=last)
            if settings.group_by is not None:
                found, final = group(listed.hits, order, settings.group_by, settings.group_size, need, caps)
                if final or last:
                    groups = [
                        HitGroup(value, [_shown(listed.hits, p, options) for p in positions])
                        for value, positions in found[options.offset : need]
                    ]
                    return Recommendation([], options.k, options.offset, snap.generation, skipped, groups)
            else:
                picks = list(islice(order, need))
                if len(picks) >= need or last:
                    hits = [_shown(listed.hits, p, options) for p in picks[options.offset : need]]
                    return Recommendation(hits, options.k, options.offset, snap.generation, skipped)
            denied = self._denied(caps.retired(), looked_up)
            if denied is None:  # short for another reason (or a cap on an unfilterable field): a longer list
                widened += 1
                depth = min(depth * 4, max(snap.size, 1))
                listed, vectors = self._list(ask, depth)
            else:
                depth *= 2
                more, more_vectors = self._list(ask, depth, np.concatenate([denied, np.asarray(listed.keys, np.int64)]))
                listed, vectors = self._join(listed, vectors, more, more_vectors, options, ask.banned)
        raise AssertionError("unreachable: the last round always returns")

    # -- the ranked list ---------------------------------------------------------------------------------

    def _list(self, ask: _Ask, depth: int, denied: np.ndarray | None = None) -> tuple[RankedList, np.ndarray | None]:
        """At least ``depth`` candidates in relevance order (shaped by the options), with vectors for MMR."""
        if ask.query is not None and (not len(ask.pos) or ask.by_average):
            listed = self._retriever.ranked(
                ask.snap, ask.query, ask.options, depth, banned_keys=ask.banned, denied=denied, excluded=ask.excluded
            )
            return listed, self._vectors(listed.keys) if ask.with_vectors else None
        return self._best_score(ask, depth, denied)

    def _denied(
        self, retired: list[tuple[str, str]], looked_up: dict[tuple[str, str], np.ndarray]
    ) -> np.ndarray | None:
        """Keys of the items having a retired ``(attribute, value)``; ``None`` when none is retired or one of
        them cannot be looked up by value (a catalog field other than ``category``).

        Args:
            looked_up: the keys of values already looked up by this request (filled in here).

        An accepted tag that gives an item the value counts as having it here (as in filters).
        """
        if not retired or any(name in CATALOG_FIELDS and name != "category" for name, _ in retired):
            return None
        for name, value in retired:
            if (name, value) not in looked_up:
                where = (
                    ItemFilter(categories=(value,)) if name == "category" else ItemFilter(attributes=((name, value),))
                )
                looked_up[(name, value)] = self._store.matching_keys(where)
        return np.concatenate([looked_up[pair] for pair in retired])  # made unique once, where it is used

    def _join(
        self,
        listed: RankedList,
        vectors: np.ndarray | None,
        more: RankedList,
        more_vectors: np.ndarray | None,
        options: SearchOptions,
        banned: Sequence[int],
    ) -> tuple[RankedList, np.ndarray | None]:
        """``listed`` followed by ``more``, collapsed and deduplicated across both (``listed`` stays as it is)."""
        joined = RankedList([*listed.keys, *more.keys], [*listed.hits, *more.hits], more.complete)
        shaped = self._retriever.shape(joined, replace(options, min_score=None), banned)
        if vectors is None or more_vectors is None:
            return shaped, None
        row = {key: i for i, key in enumerate(joined.keys)}
        both = np.concatenate([vectors, more_vectors])
        return shaped, both[[row[k] for k in shaped.keys]] if shaped.keys else both[:0]

    # -- examples ----------------------------------------------------------------------------------------

    def _resolve(self, examples: Sequence[Example | str], skipped: dict[str, SkippedExample]) -> Examples:
        """The usable examples' vectors; unknown or unindexed item ids go to ``skipped``."""
        given = [_example(e) for e in examples]
        stored = self._store.get_items_by_id(e.item_id for e in given if e.item_id is not None)
        keys, vectors = self._store.vectors_for(item.key for item in stored.values())
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
                if item.key not in vector_of:
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

    def _best_score(self, ask: _Ask, depth: int, denied: np.ndarray | None = None) -> tuple[RankedList, np.ndarray]:
        """Candidates near any positive example (or −n̄ without positives), scored by the best-score rule and
        shaped by ``options``.

        Returns:
            The shaped list (at least ``depth`` long before shaping, when there are that many) and its vectors.
        """
        pos, neg, options = ask.pos, ask.neg, ask.options
        if len(pos):
            queries = list(pos.vectors)
        else:
            assert ask.query is not None
            queries = [ask.query]
        # Without negatives, an item in the top n by best score is in its best example's top n (a nearer
        # neighbour of that example scores at least as high), so each example's depth suffices; negatives
        # push some of those down, hence twice as many.
        each = depth * (2 if len(neg) else 1) * (4 if options.collapse_by_product or options.dedupe else 1)
        union: dict[int, None] = {}
        complete = True
        for vector in queries:
            found, exhaustive = self._retriever.nearest(ask.snap, vector, options, each, denied, ask.excluded)
            union.update(dict.fromkeys(key for key, _ in found))
            complete &= exhaustive
        keys, vectors = self._store.vectors_for(union)  # items deleted since the snapshot have no vector
        scores = best_scores(vectors, pos, neg) if len(keys) else np.zeros(0)
        order = np.argsort(-scores, kind="stable")
        # read only the items a page can reach: the list is best first, and widening asks for more
        reach = min(len(order), each)
        complete &= reach == len(order)
        top = order[:reach]
        listed = self._retriever.resolve([(int(keys[i]), float(scores[i])) for i in top], complete)
        shaped = self._retriever.shape(listed, options, ask.banned)
        row = {int(keys[i]): i for i in top}
        return shaped, vectors[[row[k] for k in shaped.keys]] if shaped.keys else vectors[:0]

    def _vectors(self, keys: Sequence[int]) -> np.ndarray:
        """Stored vectors of ``keys``, in that order."""
        found, vectors = self._store.vectors_for(keys)
        row = {int(k): i for i, k in enumerate(found.tolist())}
        return vectors[[row[int(k)] for k in keys]] if keys else vectors[:0]


def _shown(hits: Sequence[Hit], position: int, options: SearchOptions) -> Hit:
    """The hit at ``position`` as returned: explained (its relevance rank and score) when asked."""
    hit = hits[position]
    if not options.explain:
        return hit
    return replace(hit, explanation=Explanation("vector", vector_rank=position + 1, vector_score=hit.score))


def _example(example: Example | str) -> Example:
    if isinstance(example, str):
        return Example(item_id=example)
    if isinstance(example, Example):
        return example
    raise QueryError(f"an example must be an item id or an Example, got {type(example).__name__}")
