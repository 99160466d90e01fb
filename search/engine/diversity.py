"""Shaping a ranked list: MMR diversity, per-attribute caps, grouping and near-duplicate removal.

Pure functions over a ranked list (relevance scores in order, the attribute values the caps and groups look at,
and vectors where MMR needs them): where the list came from is the caller's business, so it can read whole item
rows for the page alone. Every rule here is *prefix-stable*: the first ``n`` picks depend
only on the list up to some point, never on how many picks are asked for, so a page built up to ``offset + k``
and sliced continues the page before it, and a cap or a grouping holds over the whole prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from catalens.indexer.records import CATALOG_FIELDS
from catalens.search.engine.types import Hit, first_positions

#: Catalog fields an attribute name may refer to directly (``attributes`` itself is no single value).
_FIELD_NAMES = frozenset(CATALOG_FIELDS) - {"attributes"}


def field_value(hit: Hit, name: str) -> str | None:
    """The value of attribute ``name`` for ``max_per`` and ``group_by``, compared as text.

    A catalog field of that name (``category``, ``product_id``...) if there is one, else
    ``hit.attributes[name]``; ``None`` when the item has no such value (it is then never capped, nor grouped).
    """
    return value_text(getattr(hit, name) if is_catalog_field(name) else hit.attributes.get(name))


def is_catalog_field(name: str) -> bool:
    """Whether attribute name ``name`` means the catalog field (column) of that name rather than an attribute."""
    return name in _FIELD_NAMES


def value_text(value: object) -> str | None:
    """A field's or attribute's value as :func:`field_value` compares it (``None`` for a missing or empty one)."""
    if value is None or value == "":
        return None
    return str(value)


def first_per_group(keys: Sequence[int], group_of: Mapping[int, int], banned: Iterable[int] = ()) -> list[int]:
    """Indices of ``keys`` to keep so that each near-duplicate group appears once, at its best rank.

    Args:
        keys: item keys in ranked order.
        group_of: item key -> duplicate group id, for the keys that are in a group.
        banned: group ids none of whose members may appear (e.g. the groups of a recommendation's inputs).

    Returns:
        Positions in ``keys``, in order: items in no group, and the first item of every group not banned.
    """
    return first_positions((group_of.get(key) for key in keys), banned)


@dataclass(frozen=True)
class Shape:
    """How :func:`pick` orders a ranked list.

    Attributes:
        diversity: MMR's novelty weight (0: relevance order; lambda = ``1 - diversity``).
        window: how many of the most relevant remaining items MMR chooses among at each step.
    """

    diversity: float = 0.0
    window: int = 1


def pick(
    scores: Sequence[float], vectors: np.ndarray | None, shape: Shape, caps: Caps, *, complete: bool
) -> Iterator[int]:
    """Positions in the ranked list in the order they are picked: MMR over a sliding window, capped per attribute.

    At each step the candidates are the ``shape.window`` most relevant items not yet picked nor capped out;
    the pick maximises ``lambda * score - (1 - lambda) * max cosine to the picks so far`` (the most relevant
    one with ``diversity`` 0). A pick that fills an attribute value's cap removes every other item with that
    value. The window slides down the list rather than being fixed to its top, so the order does not depend on
    how far it is followed, which keeps pages consistent.

    Args:
        scores: the ranked list's relevance scores, best first.
        vectors: ``(len(scores), dim)`` unit vectors, needed when ``shape.diversity > 0``.
        shape: the diversity and the window.
        caps: the caps per attribute, over the list (counted as items are picked).
        complete: whether the list is everything that can be found; when it is not, picking stops as soon
            as a step would need an item past its end (the caller then fetches a longer list).

    Yields:
        Positions in the list.
    """
    n = len(scores)
    alive = np.ones(n, dtype=bool)
    mmr = shape.diversity > 0 and vectors is not None and n > 0
    if not mmr:  # relevance order: a walk down the list, skipping what the caps retired
        for position in range(n):
            if alive[position]:
                caps.take(position, alive)
                yield position
        return
    window = max(shape.window, 1)
    relevance = np.asarray(scores, dtype=np.float64)
    lam = 1.0 - shape.diversity
    nearest = np.zeros(n, dtype=np.float64)  # max cosine to the picks so far (0 before the first pick)
    picked_any = False
    while True:
        candidates = np.flatnonzero(alive)[:window]
        if not len(candidates) or (len(candidates) < window and not complete):
            return
        if picked_any:
            gains = lam * relevance[candidates] - (1.0 - lam) * nearest[candidates]
            chosen = int(candidates[int(np.argmax(gains))])
        else:
            chosen = int(candidates[0])
        alive[chosen] = False
        caps.take(chosen, alive)
        assert vectors is not None
        similarity = vectors @ vectors[chosen]
        nearest = np.maximum(nearest, similarity) if picked_any else similarity.astype(np.float64)
        picked_any = True
        yield chosen


class Caps:
    """Counts picks per attribute value (``max_per``) over one ranked list, and retires the items of a value
    whose cap is reached."""

    def __init__(self, values: Mapping[str, Sequence[str | None]], max_per: Mapping[str, int] | None) -> None:
        """
        Args:
            values: per capped attribute, the list's values in order (:func:`field_value`).
            max_per: the most picks per value of each attribute.
        """
        self._limits = dict(max_per or {})
        self._values = {name: values[name] for name in self._limits}
        self._counts: dict[tuple[str, str], int] = {}

    def retired(self) -> list[tuple[str, str]]:
        """``(attribute, value)`` pairs whose cap is reached: no further item with them can be taken."""
        return [pair for pair, count in self._counts.items() if count >= self._limits[pair[0]]]

    def allows(self, position: int) -> bool:
        """Whether the item at ``position`` can be taken without passing a cap."""
        for name, limit in self._limits.items():
            value = self._values[name][position]
            if value is not None and self._counts.get((name, value), 0) >= limit:
                return False
        return True

    def take(self, position: int, alive: np.ndarray | None = None) -> None:
        """Count the item at ``position``; retire (in ``alive``) the items of every value whose cap it fills."""
        for name, limit in self._limits.items():
            values = self._values[name]
            value = values[position]
            if value is None:
                continue
            count = self._counts.get((name, value), 0) + 1
            self._counts[(name, value)] = count
            if count >= limit and alive is not None:
                for other, other_value in enumerate(values):
                    if other_value == value:
                        alive[other] = False


def group(
    values: Sequence[str | None],
    order: Iterable[int],
    size: int,
    groups_needed: int,
    caps: Caps,
) -> tuple[list[tuple[str, list[int]]], bool]:
    """Group picks by the value of attribute ``name``, the groups ordered by their best pick.

    Args:
        values: the ranked list's values of the grouping attribute (:func:`field_value`); items without one are
            left out.
        order: positions in the order they are picked (see :func:`pick`, given no caps: they apply here, to
            the items placed in a group only).
        size: the most positions per group.
        groups_needed: how many groups the page needs (``offset + k``).
        caps: the most placed items per attribute value, over all groups.

    Returns:
        ``(value, positions)`` for at most ``groups_needed`` groups, and whether they are final: that many
        groups were found and each is full (otherwise ``order`` ran out first).
    """
    found: dict[str, list[int]] = {}
    full = 0
    for position in order:
        value = values[position]
        if value is None or not caps.allows(position):
            continue
        members = found.get(value)
        if members is None:
            if len(found) >= groups_needed:
                continue
            members = found[value] = []
        if len(members) < size:
            caps.take(position)
            members.append(position)
            full += len(members) == size
            if full >= groups_needed:
                return list(found.items()), True
    return list(found.items()), False
