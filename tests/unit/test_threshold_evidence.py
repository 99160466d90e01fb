"""Each shipped threshold's evidence: where it came from and what the labelled items above it can promise."""

from __future__ import annotations

import numpy as np
import pytest

from catalens.indexer.tagging.calibration import calibrate_attribute
from catalens.indexer.tagging.thresholds import REPORT_Z, choose_thresholds, threshold_evidence, wilson_lower
from tests.unit.test_calibration import SCALE, clusters, names


def _probs() -> tuple[np.ndarray, np.ndarray]:
    """Three values: v0 has 12 confident right predictions, v1 three, v2 six wrong ones under them all."""
    rows, labels = [], []
    for conf in np.linspace(0.95, 0.6, 12):
        rows.append([conf, (1 - conf) / 2, (1 - conf) / 2])
        labels.append(0)
    for conf in (0.97, 0.96, 0.955):
        rows.append([(1 - conf) / 2, conf, (1 - conf) / 2])
        labels.append(1)
    for conf in np.linspace(0.5, 0.4, 6):
        rows.append([(1 - conf) / 2, (1 - conf) / 2, conf])
        labels.append(0)  # v2 is always wrong
    return np.asarray(rows), np.asarray(labels)


def test_evidence_says_own_or_pooled_and_bounds_the_precision_at_95_percent() -> None:
    probs, labels = _probs()
    thresholds = choose_thresholds(probs, labels, 0.9, multi_label=False)
    own, borrowed, blind = threshold_evidence(probs, labels, thresholds, 0.9, multi_label=False)
    assert thresholds[0] == pytest.approx(0.6) and thresholds[1] == thresholds[0]  # v1 borrows the pooled one
    assert own == {
        "source": "own",
        "labelled_above": 12,
        "right_above": 12,
        "precision_lower_95": pytest.approx(0.816, abs=1e-3),
        "pooled_precision_above": 1.0,  # every value's predictions at or above 0.6 are right
    }
    assert borrowed is not None and borrowed["source"] == "pooled" and borrowed["right_above"] == 3
    assert borrowed["precision_lower_95"] == pytest.approx(
        float(wilson_lower(np.asarray(3.0), np.asarray(3.0), REPORT_Z))
    )
    # v2's six predictions are all wrong but all under the pooled threshold, so it borrows it with no evidence:
    # the report shows 0 of 0 and no bound rather than hiding it
    assert thresholds[2] == thresholds[0]
    assert blind == {
        "source": "pooled", "labelled_above": 0, "right_above": 0, "precision_lower_95": None,
        "pooled_precision_above": 1.0,
    }  # fmt: skip


def test_a_value_without_a_threshold_has_no_evidence_and_calibration_reports_it_per_value() -> None:
    vectors, text, labels, _ = clusters(n_per=40, values=4, seed=3)
    cal = calibrate_attribute("kind", names(4), False, vectors @ text.T, vectors, labels, SCALE, folds=3)
    assert any(t is not None for t in cal.thresholds)
    for v, value in enumerate(names(4)):
        row = cal.report["values"][value]
        evidence = row["evidence"]
        if cal.thresholds[v] is None:
            assert evidence is None
        else:
            assert (
                evidence["source"] in ("own", "pooled") and 0 <= evidence["right_above"] <= evidence["labelled_above"]
            )
            bound = evidence["precision_lower_95"]
            assert bound is None or 0.0 < bound < evidence["right_above"] / evidence["labelled_above"] + 1e-9
            assert 0.0 <= evidence["pooled_precision_above"] <= 1.0


def test_the_cli_names_the_values_whose_evidence_is_weaker_than_the_target() -> None:
    from catalens.search.cli.tagging import weak_evidence

    def row(bound: float | None, right: int, above: int, source: str = "own") -> dict[str, object]:
        evidence = {"source": source, "labelled_above": above, "right_above": right, "precision_lower_95": bound}
        return {"threshold": 0.5, "evidence": evidence}

    report = {
        "target_precision": 0.9,
        "values": {
            "food": row(0.87, 18, 18),
            "tools": row(0.93, 40, 40),
            "toys": row(None, 0, 0, "pooled"),
            "music": {"threshold": None, "evidence": None},
        },
    }
    assert weak_evidence(report) == ["food (0.87, 18/18)", "toys (no bound, 0/0)"]
    assert weak_evidence({"target_precision": 0.9, "values": {"old": {"threshold": 0.4}}}) == []  # older files
