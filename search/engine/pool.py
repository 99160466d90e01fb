"""A recommendation's candidate pool: item keys in relevance order with just what shaping them needs.

MMR, the caps and grouping look at many more candidates than a page shows (MMR's default pool is 50 for a page
of 10), but only at their scores, vectors and one or two attribute values. Reading every candidate's whole row
and vector from SQLite made a recommendation three to six times as slow as a plain search (measured at 100k
items: 60 rows 1.6 ms, 60 vectors 1.0 ms, next to a 0.7 ms graph search), so a pool holds the candidates'
keys, scores and the few column values asked for (one narrow query, which also drops items deleted or failed
since the snapshot), their vectors as the snapshot holds them (:meth:`VectorRetriever.vectors`: the index's
own storage where it keeps exact vectors), and whole rows are read for the page alone (:func:`page_hits`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from catalens.indexer.store import CatalogStore
from catalens.search.engine.diversity import is_catalog_field, value_text
from catalens.search.engine.retrieval import Ranked, VectorRetriever, dedupe_positions
from catalens.search.engine.snapshot import Snapshot
from catalens.search.engine.types import Explanation, Hit, SearchOptions, _hit


@dataclass(frozen=True)
class Pool:
    """Candidates best first: keys, relevance scores, attribute values by name, vectors (or ``None``).

    Attributes:
        complete: nothing beyond these candidates can be found.
        product_ids: each candidate's product (read when collapsing by product), else empty.
    """

    keys: list[int]
    scores: list[float]
    values: dict[str, list[str | None]]
    vectors: np.ndarray | None
    complete: bool
    product_ids: list[str | None]

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, positions: Sequence[int], complete: bool | None = None) -> Pool:
        """The candidates at ``positions``, in that order."""
        at = list(positions)
        return Pool(
            [self.keys[i] for i in at],
            [self.scores[i] for i in at],
            {name: [values[i] for i in at] for name, values in self.values.items()},
            self.vectors[at] if self.vectors is not None else None,
            self.complete if complete is None else complete,
            [self.product_ids[i] for i in at] if self.product_ids else [],
        )

    def then(self, more: Pool) -> Pool:
        """This pool followed by ``more`` (whose completeness the result takes)."""
        vectors = None
        if self.vectors is not None and more.vectors is not None:
            vectors = np.concatenate([self.vectors, more.vectors])
        return Pool(
            [*self.keys, *more.keys],
            [*self.scores, *more.scores],
            {name: [*values, *more.values[name]] for name, values in self.values.items()},
            vectors,
            more.complete,
            [*self.product_ids, *more.product_ids],
        )


class PoolReader:
    """Makes pools from ranked keys for one request: which values to read and how to shape the list."""

    def __init__(
        self, store: CatalogStore, retriever: VectorRetriever, names: Sequence[str], options: SearchOptions
    ) -> None:
        """
        Args:
            store: where the candidates' columns and the page's rows are read.
            retriever: where vectors are read (from the snapshot first).
            names: the attributes whose values the pool carries (``max_per`` and ``group_by`` names).
            options: the request's options (``min_score``, collapsing, dedupe).
        """
        self._store = store
        self._retriever = retriever
        self._names = tuple(dict.fromkeys(names))
        self._options = options
        columns = [n for n in self._names if is_catalog_field(n)]
        if any(not is_catalog_field(n) for n in self._names):
            columns.append("attributes")
        if options.collapse_by_product:
            columns.append("product_id")
        self._columns = tuple(dict.fromkeys(columns))
        # Nothing to read but whether each candidate is still there: with no dedupe (where a gone item could
        # stand for its group), that is left to the page's own read (:meth:`page_hits`), which sends the
        # request back to pick again without the items gone since the snapshot (:attr:`gone`).
        self._lazy = not self._columns and not options.dedupe
        self.gone: set[int] = set()

    def read(
        self,
        snap: Snapshot,
        ranked: Ranked,
        complete: bool,
        banned: Sequence[int],
        *,
        vectors: bool | np.ndarray,
    ) -> Pool:
        """The pool of ``ranked`` ``(key, score)`` pairs, shaped (:meth:`shape`).

        Args:
            vectors: ``True`` to read the candidates' vectors, ``False`` for none, or ``(len(ranked), dim)``
                vectors already at hand (in ``ranked``'s order).
        """
        if self._lazy:
            live = [i for i, (key, _) in enumerate(ranked) if key not in self.gone]
            found: list[tuple[Any, ...]] = [() for _ in live]
        else:
            rows = self._store.indexed_columns((key for key, _ in ranked), self._columns)
            live = [i for i, (key, _) in enumerate(ranked) if key in rows]  # deleted or failed since the snapshot
            found = [rows[ranked[i][0]] for i in live]
        keys = [ranked[i][0] for i in live]
        at = {column: n for n, column in enumerate(self._columns)}
        parsed = [json.loads(row[at["attributes"]] or "{}") for row in found] if "attributes" in at else []
        values: dict[str, list[str | None]] = {}
        for name in self._names:
            if is_catalog_field(name):
                values[name] = [value_text(row[at[name]]) for row in found]
            else:
                values[name] = [value_text(attributes.get(name)) for attributes in parsed]
        matrix: np.ndarray | None = None
        if isinstance(vectors, np.ndarray):
            matrix = vectors[live] if live else vectors[:0]
        elif vectors:
            got, matrix = self._retriever.vectors(snap, keys)
            if len(got) < len(keys):  # an item without a vector after all (it cannot be compared): leave it out
                keep = set(got.tolist())
                kept = [i for i, key in enumerate(keys) if key in keep]
                live, keys, found = [live[i] for i in kept], [keys[i] for i in kept], [found[i] for i in kept]
                values = {name: [v[i] for i in kept] for name, v in values.items()}
        products = [row[at["product_id"]] for row in found] if "product_id" in at else []
        pool = Pool(keys, [ranked[i][1] for i in live], values, matrix, complete, products)
        return self.shape(pool, banned)

    def shape(self, pool: Pool, banned: Sequence[int], *, cut: bool = True) -> Pool:
        """``pool`` cut at ``min_score`` (unless ``cut`` is false), collapsed by product and deduplicated as the
        options ask (as :meth:`VectorRetriever.shape` does a ranked list of hits)."""
        options = self._options
        if cut and options.min_score is not None:
            end = next((i for i, score in enumerate(pool.scores) if score < options.min_score), len(pool))
            if end < len(pool):
                pool = pool.take(range(end), complete=True)
        if options.collapse_by_product:
            seen: set[str] = set()
            kept = []
            for position, product in enumerate(pool.product_ids):
                if product:
                    if product in seen:
                        continue
                    seen.add(product)
                kept.append(position)
            pool = pool.take(kept)
        if options.dedupe:
            pool = pool.take(dedupe_positions(self._store, pool.keys, banned))
        return pool

    def without_gone(self, pool: Pool) -> Pool:
        """``pool`` less the candidates :meth:`page_hits` found gone."""
        return pool.take([i for i, key in enumerate(pool.keys) if key not in self.gone])

    def page_hits(self, pool: Pool, pages: Sequence[Sequence[int]]) -> list[list[Hit]] | None:
        """Whole hits for each list of pool positions (one read for all), explained when the options ask.

        Returns:
            The hits; ``None`` when the pool was not checked (see ``_lazy``) and some of them turn out deleted or
            failed since the snapshot: they are then in :attr:`gone`, and the picks must be made again without
            them (:meth:`without_gone`). From a checked pool, an item deleted since it was read is left out.
        """
        items = self._store.get_items(pool.keys[p] for positions in pages for p in positions)
        if self._lazy:
            shown = [pool.keys[p] for positions in pages for p in positions]
            gone = {key for key in shown if key not in items or items[key].status != "indexed"}
            if gone:
                self.gone |= gone
                return None
        out: list[list[Hit]] = []
        for positions in pages:
            hits = []
            for position in positions:
                item = items.get(pool.keys[position])
                if item is None:
                    continue
                hit = _hit(item, pool.scores[position])
                if self._options.explain:
                    explanation = Explanation("vector", vector_rank=position + 1, vector_score=hit.score)
                    hit = replace(hit, explanation=explanation)
                hits.append(hit)
            out.append(hits)
        return out
