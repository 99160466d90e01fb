"""From similar pairs and same-content sets to duplicate groups: union-find, then each member's similarity to
its group's first member.

Grouping is transitive (single linkage): if A is like B and B like C, all three are one group even when A and C
fall under the threshold, which is what a re-encoded, then resized, then watermarked copy chain needs; each
member's similarity to the first member is reported so such a chain is visible.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from catalens.indexer.store import DuplicateGroup, DuplicateMember


class UnionFind:
    """Disjoint sets over item keys (added as they are met), with path halving and union by size."""

    def __init__(self) -> None:
        self._parent: dict[int, int] = {}
        self._size: dict[int, int] = {}

    def find(self, key: int) -> int:
        parent = self._parent
        if key not in parent:
            parent[key] = key
            self._size[key] = 1
            return key
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self._size[ra] < self._size[rb]:
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._size[ra] += self._size[rb]

    def union_pairs(self, a: Iterable[int], b: Iterable[int]) -> None:
        for x, y in zip(a, b, strict=True):
            self.union(x, y)

    def components(self) -> list[list[int]]:
        """Every set of two keys or more, each sorted, ordered by smallest key."""
        sets: dict[int, list[int]] = {}
        for key in self._parent:
            sets.setdefault(self.find(key), []).append(key)
        return sorted(sorted(members) for members in sets.values() if len(members) > 1)


def build_groups(
    components: Sequence[Sequence[int]],
    vectors: dict[int, np.ndarray],
    ids: dict[int, str],
    exact: set[int],
) -> list[DuplicateGroup]:
    """Groups with their members: the smallest key first (the group's id), then by similarity to it.

    Args:
        components: sets of keys, each sorted.
        vectors: each key's exact vector (a key without one, deleted meanwhile, is left out).
        ids: each key's external id (likewise).
        exact: keys sharing their image bytes with another member.
    """
    groups: list[DuplicateGroup] = []
    for keys in components:
        present = [k for k in keys if k in vectors and k in ids]
        if len(present) < 2:
            continue
        first = vectors[present[0]]
        similarity = {k: min(1.0, float(np.dot(first, vectors[k]))) for k in present}
        similarity[present[0]] = 1.0
        ordered = [present[0], *sorted(present[1:], key=lambda k: (-similarity[k], k))]
        members = [DuplicateMember(k, ids[k], round(similarity[k], 6), k in exact) for k in ordered]
        groups.append(DuplicateGroup(present[0], members))
    return groups
