"""Catalog audit: out-of-sample scores find items whose catalog value is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from catalens.indexer.tagging.audit import audit_labels
from catalens.indexer.tagging.errors import CalibrationError


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_audit_ranks_planted_wrong_labels_first() -> None:
    rng = np.random.default_rng(0)
    values, n_per, dim = 5, 60, 96
    centres = _unit(rng.standard_normal((values, dim)))
    truth = rng.permutation(np.repeat(np.arange(values), n_per))
    vectors = _unit(0.35 * centres[truth] + 1.2 * rng.standard_normal((len(truth), dim)) / np.sqrt(dim))
    text = _unit(centres + 1.0 * rng.standard_normal((values, dim)) / np.sqrt(dim))
    given = truth.copy()
    planted = rng.choice(len(truth), size=15, replace=False)
    given[planted] = (truth[planted] + rng.integers(1, values, size=15)) % values
    entries = audit_labels(vectors @ text.T, vectors, given, 100.0, folds=5, seed=0)
    top = {e.index for e in entries[:15]}
    assert len(top & set(planted.tolist())) >= 12
    assert all(a.self_confidence <= b.self_confidence for a, b in zip(entries, entries[1:], strict=False))
    first = entries[0]
    assert first.predicted != first.given and first.predicted_confidence > first.self_confidence
    planted_found = [e for e in entries if e.index in set(planted.tolist())]
    assert sum(e.predicted == truth[e.index] for e in planted_found) >= 0.8 * len(planted_found)


def test_audit_refuses_shapes_that_do_not_fit() -> None:
    with pytest.raises(CalibrationError):
        audit_labels(np.zeros((3, 2)), np.zeros((3, 4)), np.array([0, 1, 2]), 100.0)
    with pytest.raises(CalibrationError):
        audit_labels(np.zeros((3, 2)), np.zeros((2, 4)), np.array([0, 1, 1]), 100.0)
