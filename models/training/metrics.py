"""Ranking metrics with binary relevance: recall@k, MRR and nDCG@k over ranked id lists.

Pure Python on ids, no torch and no store: the fine-tuning job scores held-out pairs with them and
``catalens eval`` scores a store on a labelled set with them, so both report the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

RECALL_AT = (1, 5, 10)
NDCG_AT = 10


def first_relevant_rank(ranking: Sequence[str], relevant: set[str]) -> int | None:
    """1-based rank of the first relevant id, or ``None`` when none is in the ranking."""
    for rank, item_id in enumerate(ranking, start=1):
        if item_id in relevant:
            return rank
    return None


def ndcg(ranking: Sequence[str], relevant: set[str], k: int = NDCG_AT) -> float:
    """Binary-relevance nDCG@k."""
    dcg = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(ranking[:k], start=1) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


def retrieval_metrics(rankings: Sequence[Sequence[str]], relevants: Sequence[set[str]]) -> dict[str, float]:
    """recall@1/5/10, MRR and nDCG@10 averaged over queries.

    Args:
        rankings: one ranked id list per query, best first.
        relevants: the ids that count as correct for each query.

    Returns:
        ``{"recall@1", "recall@5", "recall@10", "mrr", "ndcg@10"}`` rounded to 6 places; empty when there
        are no queries.
    """
    n = len(rankings)
    if n == 0:
        return {}
    ranks = [first_relevant_rank(r, rel) for r, rel in zip(rankings, relevants, strict=True)]
    metrics = {f"recall@{k}": sum(1 for rank in ranks if rank is not None and rank <= k) / n for k in RECALL_AT}
    metrics["mrr"] = sum(1.0 / rank for rank in ranks if rank is not None) / n
    metrics[f"ndcg@{NDCG_AT}"] = sum(ndcg(r, rel) for r, rel in zip(rankings, relevants, strict=True)) / n
    return {name: round(value, 6) for name, value in metrics.items()}
