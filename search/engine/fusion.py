"""Hybrid ranking: reciprocal-rank fusion of a vector list and a lexical list (see :class:`Fusion`).

Pure functions over hit lists: the retrieval of both lists, and the snapshot they came from, are the
caller's business, so the fusion rule can be tested and tuned on lists alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from catalens.search.engine.types import Explanation, Fusion, Hit, SearchOptions, list_depth


@dataclass(frozen=True)
class FusedRanking:
    """The fused list and, per item id, what each input list said about it (for explanations).

    Attributes:
        hits: items with a positive fused score, best first, ``score`` set to the fused score.
        vector_rank, lexical_rank: 1-based rank in each input list.
        cosine, bm25: the score in each input list.
    """

    hits: list[Hit]
    vector_rank: dict[str, int]
    lexical_rank: dict[str, int]
    cosine: dict[str, float]
    bm25: dict[str, float]

    def explain(self, page: Sequence[Hit], matched_fields: dict[str, dict[str, str]]) -> list[Hit]:
        """``page`` (hits of :attr:`hits`) with a hybrid :class:`Explanation` attached to each."""
        return [
            replace(
                h,
                explanation=Explanation(
                    "hybrid",
                    vector_rank=self.vector_rank.get(h.id),
                    vector_score=self.cosine.get(h.id),
                    lexical_rank=self.lexical_rank.get(h.id),
                    lexical_score=self.bm25.get(h.id),
                    fused_score=h.score,
                    matched_fields=matched_fields.get(h.id, {}),
                ),
            )
            for h in page
        ]


def fusion_depth(fusion: Fusion, options: SearchOptions) -> int:
    """How many hits each input list contributes: the fusion's depth, or more if the page needs more."""
    return max(fusion.depth, list_depth(options))


def reciprocal_rank_fusion(
    vector_hits: Sequence[Hit], lexical_hits: Sequence[Hit], fusion: Fusion, depth: int
) -> FusedRanking:
    """Fuse two ranked lists (each at most ``depth`` long) by weighted reciprocal rank.

    An item in both lists keeps the vector list's catalog data; ties (e.g. one list weighted zero) keep the
    vector order, then the lexical order; items whose fused score is 0 (only in a zero-weighted list) are
    dropped.
    """
    vector_rank = {h.id: rank for rank, h in enumerate(vector_hits, start=1)}
    lexical_rank = {h.id: rank for rank, h in enumerate(lexical_hits, start=1)}
    by_id = {h.id: h for h in lexical_hits} | {h.id: h for h in vector_hits}

    def fused(item_id: str) -> float:
        score = 0.0
        if item_id in vector_rank:
            score += fusion.vector_weight / (fusion.rank_constant + vector_rank[item_id])
        if item_id in lexical_rank:
            score += fusion.lexical_weight / (fusion.rank_constant + lexical_rank[item_id])
        return score

    scores = {item_id: fused(item_id) for item_id in by_id}
    order = sorted(by_id, key=lambda i: (-scores[i], vector_rank.get(i, depth + 1), lexical_rank.get(i, depth + 1)))
    return FusedRanking(
        hits=[replace(by_id[i], score=scores[i]) for i in order if scores[i] > 0],
        vector_rank=vector_rank,
        lexical_rank=lexical_rank,
        cosine={h.id: h.score for h in vector_hits},
        bm25={h.id: h.score for h in lexical_hits},
    )
