"""Retrieval: the ranked vector list (cosine similarity) and the ranked lexical list (BM25) of one query.

Filtered vector queries always return ``k`` hits when ``k`` items match: small match sets are scored exactly
from the store's vectors; larger ones are searched in the snapshot's vector index with the matches as its
allowed set, widening the search until enough hits are found; exclusions, collapsing by product and
dedupe (one item per stored near-duplicate group) over-fetch until enough distinct hits are found or the
catalog is exhausted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from catalens.indexer.lexical import FIELDS, more_like_this
from catalens.indexer.store import CaptionSources, CatalogStore
from catalens.indexer.store.fulltext import TermStats
from catalens.indexer.vectors.rerank import rerank
from catalens.search.engine.diversity import first_per_group
from catalens.search.engine.snapshot import Snapshot
from catalens.search.engine.types import (
    Explanation,
    Fusion,
    Hit,
    SearchOptions,
    _hit,
    collapse,
    collapse_positions,
    list_depth,
)

#: Filters matching at most this many items are scored exactly instead of searched in the index. Scoring
#: exactly reads every match's vector from SQLite (about 70 µs a row at 1M items: 10,000 matches took 700 ms),
#: while the index searched with the matches as its allowed set (IVF probing more lists for a selective set)
#: answered the same 1 % filter at recall@10 1.0 in 20 ms (measured, 2026-11-26).
EXACT_FILTER_LIMIT = 1_000
#: Index searches after the first, each wider, before an allowed set is scored exactly.
MAX_WIDENING = 4
#: BM25 scores at or under this carry no information: FTS5 floors the IDF of a word found in more than half the
#: rows at 1e-6, so a row matching only such words ("keywords" in every description) scores about 1e-5. A "more
#: like this" list drops them: ranked by ties, they would only shuffle the vector list.
UNINFORMATIVE = 1e-3
#: The full-text columns hybrid ranking's lexical list matches when every caption restates the vectors.
WITHOUT_CAPTIONS: tuple[str, ...] = tuple(f for f in FIELDS if f != "caption")

Ranked = list[tuple[int, float]]


class VectorRetriever:
    """Ranks a store's items by cosine similarity to a query vector, over one snapshot at a time."""

    def __init__(self, store: CatalogStore, *, exact_limit: int = EXACT_FILTER_LIMIT, search_threads: int = 1) -> None:
        """
        Args:
            store: where item rows and vectors are read.
            exact_limit: filters matching at most this many items are scored exactly.
            search_threads: threads the vector index may use per search (see :meth:`VectorIndex.search`).
        """
        self._store = store
        self._exact_limit = exact_limit
        self._search_threads = search_threads

    def page(
        self, snap: Snapshot, query: np.ndarray, options: SearchOptions, *, banned_keys: Sequence[int] = ()
    ) -> list[Hit]:
        """The page of hits ``options`` asks for, best first (``options.mode`` is not looked at).

        Args:
            banned_keys: items none of whose near-duplicates may appear (with ``options.dedupe``).
        """
        listed = self.ranked(snap, query, options, options.need, banned_keys=banned_keys)
        page = listed.hits[options.offset : options.need]
        if options.explain:
            page = [
                replace(h, explanation=Explanation("vector", vector_rank=rank, vector_score=h.score))
                for rank, h in enumerate(page, start=options.offset + 1)
            ]
        return page

    def ranked(
        self,
        snap: Snapshot,
        query: np.ndarray,
        options: SearchOptions,
        depth: int,
        *,
        banned_keys: Sequence[int] = (),
        denied: np.ndarray | None = None,
        excluded: np.ndarray | None = None,
    ) -> RankedList:
        """At least ``depth`` hits (when there are that many), best first, with their keys.

        Filters, ``exclude_ids``, ``min_score``, collapsing and dedupe apply; ``options``' paging is not looked at.

        Args:
            banned_keys: items none of whose near-duplicates may appear (with ``options.dedupe``).
            denied: keys skipped in the index itself (however many: they cost no over-fetching; repeats allowed).
            excluded: the keys of ``options.exclude_ids`` when the caller has them (see :meth:`keys_of`).
        """
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        allowed, excluded = self._allowed(options, denied, excluded)

        def resolve(found: Ranked, complete: bool) -> RankedList:
            listed = self._resolve(found, excluded, complete)
            return self.shape(listed, options, banned_keys)

        if allowed is not None and len(allowed) <= self._exact_limit:
            return resolve(self._exact(query, allowed), True)
        fetch = depth * (4 if options.collapse_by_product or options.dedupe else 1) + len(excluded)
        for attempt in range(MAX_WIDENING + 1):
            found, exhaustive = self._approximate(snap, query, fetch, allowed, attempt, denied)
            listed = resolve(found, exhaustive)
            if len(listed.hits) >= depth or listed.complete:
                return listed
            fetch = min(fetch * 4, max(snap.size, 1))
        if allowed is not None:  # an approximate index could not reach enough matches: be exact
            return resolve(self._exact(query, allowed), True)
        return listed

    def nearest(
        self,
        snap: Snapshot,
        query: np.ndarray,
        options: SearchOptions,
        depth: int,
        denied: np.ndarray | None = None,
        excluded: np.ndarray | None = None,
        least: int | None = None,
    ) -> tuple[Ranked, bool]:
        """``(key, cosine)`` of at least ``depth`` items (when there are that many), best first, and whether
        nothing more can be found.

        With ``least``, up to ``depth`` items are asked for but ``least`` of them are enough: the search is not
        widened for more (a caller that goes on below the list itself when it needs more).

        Filters and ``exclude_ids`` apply; items are not read (see :meth:`resolve`), so the keys of items deleted
        since the snapshot may be among them; ``denied`` keys are skipped in the index itself.
        """
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        allowed, excluded = self._allowed(options, denied, excluded)
        if allowed is not None and len(allowed) <= self._exact_limit:
            return self._exact(query, allowed), True
        skip = set(excluded.tolist())
        fetch = depth + len(skip)
        for attempt in range(MAX_WIDENING + 1):
            found, exhaustive = self._approximate(snap, query, fetch, allowed, attempt, denied)
            found = [pair for pair in found if pair[0] not in skip]
            if len(found) >= (depth if least is None else least) or exhaustive:
                return found, exhaustive
            fetch = min(fetch * 4, max(snap.size, 1))
        if allowed is not None:
            return self._exact(query, allowed), True
        return found, False

    def nearest_many(
        self,
        snap: Snapshot,
        queries: np.ndarray,
        options: SearchOptions,
        depth: int,
        denied: np.ndarray | None = None,
        excluded: np.ndarray | None = None,
        least: int | None = None,
    ) -> list[tuple[Ranked, bool]]:
        """:meth:`nearest` for each row of ``queries``, searched in one batch (one index call for every row).

        FAISS answers the rows of one call in a single pass (on several threads when ``search_threads`` allows),
        so several queries cost less than as many calls; rows the batch leaves short (a filter or the exclusions
        taking too many of their candidates) go on alone through :meth:`nearest`'s widening.
        """
        matrix = np.ascontiguousarray(queries, dtype=np.float32).reshape(len(queries), -1)
        allowed, excluded = self._allowed(options, denied, excluded)
        if allowed is not None and len(allowed) <= self._exact_limit:
            return [(self._exact(query, allowed), True) for query in matrix]
        skip = set(excluded.tolist())
        fetch = depth + len(skip)
        out: list[tuple[Ranked, bool]] = []
        batch = self._approximate_many(snap, matrix, fetch, allowed, 0, denied)
        for query, (found, exhaustive) in zip(matrix, batch, strict=True):
            found = [pair for pair in found if pair[0] not in skip]
            if len(found) >= (depth if least is None else least) or exhaustive:
                out.append((found, exhaustive))
            else:
                out.append(self.nearest(snap, query, options, depth, denied, excluded, least))
        return out

    def vectors(self, snap: Snapshot, keys: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of ``keys`` as ``snap`` searches them, in that order (keys without one are left out).

        Read from the snapshot's delta and from the index's own storage where it keeps exact vectors
        (:meth:`VectorIndex.stored_vectors`), else from the store: SQLite reads cost about 17 µs a vector
        (measured, 100k items), the index's storage next to nothing.
        """
        wanted = np.asarray(keys, dtype=np.int64).reshape(-1)
        dim = self._store.manifest.dim
        if not len(wanted):
            return wanted, np.zeros((0, dim), dtype=np.float32)
        if snap.index is not None and not snap.rerank and not len(snap.delta_keys) and not len(snap.hidden):
            stored = snap.index.stored_vectors(wanted)  # the usual case: the index has every one of them
            if stored is not None and len(stored[0]) == len(wanted):
                return stored
        out = np.zeros((len(wanted), dim), dtype=np.float32)
        have = np.zeros(len(wanted), dtype=bool)

        def place(found: np.ndarray, rows: np.ndarray) -> None:
            at = {int(k): i for i, k in enumerate(found.tolist())}
            for position, key in enumerate(wanted.tolist()):
                row = at.get(key)
                if row is not None and not have[position]:
                    out[position], have[position] = rows[row], True

        if len(snap.delta_keys):
            place(snap.delta_keys, snap.delta_vectors)
        if snap.index is not None and not snap.rerank and not have.all():
            rest = wanted[~have & ~np.isin(wanted, snap.hidden)]
            stored = snap.index.stored_vectors(rest) if len(rest) else None
            if stored is not None:
                place(*stored)
        if not have.all():
            place(*self._store.vectors_for(wanted[~have].tolist()))
        return wanted[have], out[have]

    def resolve(self, ranked: Ranked, complete: bool) -> RankedList:
        """``ranked`` as hits, leaving out the keys whose items are gone or not indexed."""
        return self._resolve(ranked, np.zeros(0, dtype=np.int64), complete)

    def shape(self, listed: RankedList, options: SearchOptions, banned_keys: Sequence[int] = ()) -> RankedList:
        """``listed`` cut at ``options.min_score``, collapsed by product and deduplicated as ``options`` asks."""
        keys, hits, complete = listed.keys, listed.hits, listed.complete
        if options.min_score is not None:
            cut = next((i for i, h in enumerate(hits) if h.score < options.min_score), len(hits))
            if cut < len(hits):
                keys, hits, complete = keys[:cut], hits[:cut], True
        if options.collapse_by_product:
            kept = collapse_positions(hits)
            keys, hits = [keys[i] for i in kept], [hits[i] for i in kept]
        if options.dedupe:
            kept = dedupe_positions(self._store, keys, banned_keys)
            keys, hits = [keys[i] for i in kept], [hits[i] for i in kept]
        return RankedList(keys, hits, complete)

    def _allowed(
        self, options: SearchOptions, denied: np.ndarray | None, excluded: np.ndarray | None
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """The keys the filter allows (``None``: every key) less the excluded and denied ones; the excluded keys."""
        allowed = None if options.where.is_empty else self._store.matching_keys(options.where)
        excluded = self.keys_of(options.exclude_ids) if excluded is None else excluded
        if allowed is not None:
            allowed = np.setdiff1d(allowed, excluded, assume_unique=True)
            if denied is not None and len(denied):
                allowed = np.setdiff1d(allowed, denied)
        return allowed, excluded

    def _lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._store.vectors_for(keys.tolist())

    def keys_of(self, ids: Sequence[str]) -> np.ndarray:
        """The sorted, unique keys of the items with these ids (unknown ids have none)."""
        if not ids:
            return np.zeros(0, dtype=np.int64)
        keys = [item.key for item in self._store.get_items_by_id(ids).values()]
        return np.unique(np.asarray(keys, dtype=np.int64))

    def _exact(self, query: np.ndarray, allowed: np.ndarray) -> Ranked:
        keys, vectors = self._store.vectors_for(allowed.tolist())
        if not len(keys):
            return []
        scores = vectors @ query
        order = np.argsort(-scores, kind="stable")
        return [(int(keys[i]), float(scores[i])) for i in order]

    def _approximate(
        self,
        snap: Snapshot,
        query: np.ndarray,
        fetch: int,
        allowed: np.ndarray | None,
        attempt: int,
        denied: np.ndarray | None = None,
    ) -> tuple[Ranked, bool]:
        """Top ``fetch`` candidates from the index and the delta; also whether nothing more can be found.

        Each ``attempt`` widens the index search, so selective filters reach enough matches.
        """
        return self._approximate_many(snap, query[None, :], fetch, allowed, attempt, denied)[0]

    def _approximate_many(
        self,
        snap: Snapshot,
        matrix: np.ndarray,
        fetch: int,
        allowed: np.ndarray | None,
        attempt: int,
        denied: np.ndarray | None = None,
    ) -> list[tuple[Ranked, bool]]:
        """:meth:`_approximate` for each row of ``matrix``, with one index search for them all."""
        found: list[Ranked] = [[] for _ in matrix]
        exhaustive = True
        denied = denied if denied is not None and len(denied) else None
        if snap.index is not None and snap.index_count:
            depth = max(fetch, snap.rerank)
            hidden = snap.hidden if denied is None else _hidden_with(snap.hidden, denied)
            result = snap.index.search(
                matrix, depth, allowed=allowed, hidden=hidden, attempt=attempt, threads=self._search_threads
            )
            for row, query in enumerate(matrix):
                if snap.rerank:  # lossy codes: re-score the candidates with the exact vectors the store keeps
                    ids, scores = rerank(query, result.ids[row], self._lookup)
                    found[row].extend(zip(ids.tolist(), scores.tolist(), strict=True))
                else:
                    pairs = zip(result.ids[row].tolist(), result.scores[row].tolist(), strict=True)
                    found[row].extend((i, s) for i, s in pairs if i >= 0)
            exhaustive = result.exhaustive
        if len(snap.delta_keys):
            mask = np.ones(len(snap.delta_keys), dtype=bool)
            if allowed is not None:
                mask &= np.isin(snap.delta_keys, allowed)
            if denied is not None:
                mask &= ~np.isin(snap.delta_keys, denied)
            keys, vectors = snap.delta_keys[mask].tolist(), snap.delta_vectors[mask]
            for row, query in enumerate(matrix):
                found[row].extend(zip(keys, (vectors @ query).tolist(), strict=True))
        for ranked in found:
            ranked.sort(key=lambda pair: -pair[1])
        return [(ranked[:fetch], exhaustive) for ranked in found]

    def _resolve(self, ranked: Ranked, excluded: np.ndarray, complete: bool) -> RankedList:
        items = self._store.get_items(key for key, _ in ranked)
        skip = set(excluded.tolist())
        keys: list[int] = []
        hits: list[Hit] = []
        for key, score in ranked:
            item = items.get(key)
            if item is None or item.status != "indexed" or key in skip:
                continue  # deleted since the snapshot was taken
            keys.append(key)
            hits.append(_hit(item, score))
        return RankedList(keys, hits, complete)


def _hidden_with(hidden: np.ndarray, denied: np.ndarray) -> np.ndarray:
    """``hidden`` and ``denied`` as one sorted array of unique keys; ``denied`` as it is when it already is one
    and nothing is hidden (the common case: no re-sort of a capped brand's thousands of keys per search)."""
    if not len(hidden) and (len(denied) < 2 or bool(np.all(denied[1:] > denied[:-1]))):
        return denied
    return np.union1d(hidden, denied)


@dataclass(frozen=True)
class RankedList:
    """Hits best first with their item keys, and whether nothing beyond them can be found."""

    keys: list[int]
    hits: list[Hit]
    complete: bool


def dedupe_positions(store: CatalogStore, keys: Sequence[int], banned_keys: Iterable[int] = ()) -> list[int]:
    """Positions of ``keys`` to keep so that each stored near-duplicate group shows once (its best-ranked item).

    Args:
        banned_keys: items none of whose near-duplicates may be kept (a recommendation's inputs).
    """
    banned = list(banned_keys)
    groups = store.duplicates.group_of([*keys, *banned])
    return first_per_group(keys, groups, {groups[k] for k in banned if k in groups})


def dedupe_hits(store: CatalogStore, hits: list[Hit], banned_keys: Sequence[int] = ()) -> list[Hit]:
    """``hits`` with one item per near-duplicate group, none from the groups of ``banned_keys`` (keys looked up
    by id: for lists that do not carry them)."""
    by_id = store.get_items_by_id(h.id for h in hits)
    keys = [by_id[h.id].key if h.id in by_id else -1 for h in hits]
    return [hits[i] for i in dedupe_positions(store, keys, banned_keys)]


def hybrid_matches_captions(sources: CaptionSources, fusion: Fusion) -> bool | None:
    """Whether hybrid ranking with ``fusion`` matches a store's caption words (``None``: it has no caption).

    Not while every caption restates the store's own vectors, unless ``fusion.vector_captions`` asks for them.
    """
    if sources.from_vectors + sources.other == 0:
        return None
    return fusion.vector_captions or not sources.only_from_vectors


class LexicalRetriever:
    """Ranks a store's items by BM25 over its full-text index (titles, attributes, captions, OCR text).

    Queries with common words rank a bounded candidate set (see :func:`indexer.store.fulltext.lexical_search`),
    so the lexical list costs a few milliseconds at a million items; the retriever keeps the row counts of
    common words between queries (:class:`TermStats`, recounted after the store changes).
    """

    def __init__(self, store: CatalogStore) -> None:
        self._store = store
        self._stats = TermStats()

    def fusion_columns(self, fusion: Fusion) -> tuple[str, ...] | None:
        """The full-text columns a hybrid query's lexical list matches (``None``: every column).

        Every column but ``caption`` when the store's captions all came from its own vectors and ``fusion``
        does not ask for them (see :attr:`Fusion.vector_captions`): they would count the vector list twice.
        """
        return WITHOUT_CAPTIONS if hybrid_matches_captions(self._store.caption_sources(), fusion) is False else None

    def more_like_this(self, key: int, columns: Sequence[str] | None = None) -> str | None:
        """A MATCH expression of the item's own words (in ``columns``, if given), title first: what its
        "similar items" share in words (``None``: it has none)."""
        row = self._store.full_text(key)
        return more_like_this([row[f] for f in (columns or FIELDS) if row.get(f)])

    def ranked(
        self,
        match: str,
        options: SearchOptions,
        depth: int,
        columns: Sequence[str] | None = None,
        informative: bool = False,
    ) -> list[Hit]:
        """The best ``depth`` full-text matches (in ``columns``, if given) as hits scored by BM25, filters and
        exclusions applied; with ``informative``, only matches whose words carry information (see
        :data:`UNINFORMATIVE`)."""
        excluded = set(options.exclude_ids)
        matches = self._store.lexical_search(match, options.where, depth + len(excluded), self._stats, columns)
        if informative:
            matches = [m for m in matches if m.score > UNINFORMATIVE]
        items = self._store.get_items(m.key for m in matches)
        hits = [_hit(items[m.key], m.score) for m in matches if m.key in items]
        return [h for h in hits if h.id not in excluded][:depth]

    def page(
        self, match: str, options: SearchOptions, banned_keys: Sequence[int] = (), informative: bool = False
    ) -> list[Hit]:
        """The page of hits ``options`` asks for, explained when it asks (with ``dedupe``, none from the
        near-duplicate groups of ``banned_keys``; with ``informative``, see :meth:`ranked`)."""
        ranked = self.ranked(match, options, list_depth(options), informative=informative)
        hits = collapse(ranked, options.collapse_by_product)
        if options.dedupe:
            hits = dedupe_hits(self._store, hits, banned_keys)
        page = hits[options.offset : options.need]
        if options.explain:
            fields_of = self.matched_fields(match, page)
            page = [
                replace(
                    h,
                    explanation=Explanation(
                        "lexical", lexical_rank=rank, lexical_score=h.score, matched_fields=fields_of.get(h.id, {})
                    ),
                )
                for rank, h in enumerate(page, start=options.offset + 1)
            ]
        return page

    def matched_fields(
        self, match: str, hits: Sequence[Hit], columns: Sequence[str] | None = None
    ) -> dict[str, dict[str, str]]:
        """Per hit id, the fields ``match`` hits (among ``columns``, if given) with a marked-up excerpt of each."""
        keys = {item.key: item.id for item in self._store.get_items_by_id(h.id for h in hits).values()}
        snippets = self._store.lexical_snippets(match, keys, columns=columns)
        return {keys[key]: found for key, found in snippets.items()}
