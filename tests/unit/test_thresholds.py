"""Choosing a value's own threshold: its counts are shrunk toward the attribute's precision at the same confidence."""

from __future__ import annotations

import numpy as np

from catalens.indexer.tagging.thresholds import MIN_OWN, PRIOR_ITEMS, choose_thresholds, lowest_threshold


def _rows(value: int, confs: np.ndarray, right: np.ndarray, values: int = 2) -> tuple[list[list[float]], list[int]]:
    rows, labels = [], []
    for conf, ok in zip(confs, right, strict=True):
        row = [(1 - conf) / (values - 1)] * values
        row[value] = conf
        rows.append(row)
        labels.append(value if ok else (value + 1) % values)
    return rows, labels


def test_a_dozen_right_predictions_do_not_earn_a_threshold_where_the_model_is_often_wrong() -> None:
    confs = np.linspace(0.95, 0.6, 12)
    own, own_labels = _rows(0, confs, np.ones(12, dtype=bool))
    # value 1 is predicted as confidently, and right only half the time
    other, other_labels = _rows(1, np.linspace(0.95, 0.6, 30), np.arange(30) % 2 == 0)
    probs, labels = np.asarray(own + other), np.asarray(own_labels + other_labels)
    assert 12 >= MIN_OWN and PRIOR_ITEMS > 0
    alone = lowest_threshold(confs, np.ones(12, dtype=bool), 0.9)
    assert alone is not None and alone < 0.61  # alone, 12 of 12 would accept down to the last of them
    # with the pool: only at the very top, where the pool's predictions are right too (its first is)
    shrunk = choose_thresholds(probs, labels, 0.9, multi_label=False)[0]
    assert shrunk is not None and shrunk >= 0.9


def test_where_the_model_is_reliably_right_a_value_keeps_its_own_threshold() -> None:
    confs = np.linspace(0.95, 0.6, 12)
    own, own_labels = _rows(0, confs, np.ones(12, dtype=bool))
    other, other_labels = _rows(1, np.linspace(0.95, 0.6, 30), np.ones(30, dtype=bool))
    probs, labels = np.asarray(own + other), np.asarray(own_labels + other_labels)
    thresholds = choose_thresholds(probs, labels, 0.9, multi_label=False)
    assert thresholds[0] is not None and thresholds[0] <= 0.61  # the pool agrees: as low as its own data allows
    # and a value that is wrong at the top does not get rescued by a good pool
    bad = np.zeros(12, dtype=bool)
    assert lowest_threshold(confs, bad, 0.9, prior=(np.concatenate([confs, confs]), np.ones(24, dtype=bool))) is None
