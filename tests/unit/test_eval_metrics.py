"""Evaluation metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from catalens.search.evaluation import classification_metrics, first_relevant_rank, ndcg, retrieval_metrics


def test_retrieval_metrics_by_hand() -> None:
    rankings = [["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"]]
    relevants = [{"b"}, {"nope"}, {"p", "r"}]
    # First relevant ranks: 2, none, 1.
    metrics = retrieval_metrics(rankings, relevants)
    assert metrics["recall@1"] == pytest.approx(1 / 3, abs=1e-6)
    assert metrics["recall@5"] == pytest.approx(2 / 3, abs=1e-6)
    assert metrics["recall@10"] == pytest.approx(2 / 3, abs=1e-6)
    assert metrics["mrr"] == pytest.approx((1 / 2 + 0 + 1) / 3, abs=1e-6)
    first = 1 / math.log2(3)  # one relevant item at rank 2, ideal DCG 1
    third = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))  # ranks 1 and 3 of two relevant items
    assert metrics["ndcg@10"] == pytest.approx((first + 0 + third) / 3, abs=1e-6)


def test_rank_and_ndcg_edge_cases() -> None:
    assert first_relevant_rank(["a", "b"], {"b"}) == 2
    assert first_relevant_rank(["a", "b"], {"c"}) is None
    assert ndcg(["a"] * 3, set()) == 0.0
    assert ndcg([f"i{n}" for n in range(20)], {"i10"}) == 0.0  # beyond the cut-off
    assert ndcg(["r1", "r2"], {"r1", "r2"}) == pytest.approx(1.0)
    assert retrieval_metrics([], []) == {}


def test_classification_metrics_by_hand() -> None:
    truths = ["cat", "cat", "dog", "bird"]
    predictions = [["cat", "dog"], ["dog", "cat"], ["dog", "cat"], ["cat", "bird"]]
    overall, per_label = classification_metrics(truths, predictions, ["cat", "dog", "bird"])
    assert overall == {"top1": 0.5, "top5": 1.0}
    assert (per_label["cat"].precision, per_label["cat"].recall, per_label["cat"].support) == (0.5, 0.5, 2)
    assert (per_label["dog"].precision, per_label["dog"].recall, per_label["dog"].support) == (0.5, 1.0, 1)
    assert (per_label["bird"].precision, per_label["bird"].recall, per_label["bird"].support) == (0.0, 0.0, 1)
