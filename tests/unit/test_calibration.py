"""Calibration of tagging: temperatures, probes, held-out thresholds, decisions and the calibration file.

Synthetic data whose truth is known: unit image vectors in one cluster per value, label vectors that are noisy
versions of the class directions (zero-shot weak but better than chance) at CLIP's logit scale of 100.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from catalens.indexer.tagging.calibration import AttributeCalibration, Calibration, calibrate_attribute, decide
from catalens.indexer.tagging.curve import learning_curve
from catalens.indexer.tagging.errors import CalibrationError
from catalens.indexer.tagging.scaling import expected_calibration_error, fit_temperature, softmax

SCALE = 100.0


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clusters(
    n_per: int = 80, values: int = 6, dim: int = 128, *, spread: float = 1.6, text_noise: float = 0.8, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, label vectors, labels, class centres): CLIP-like clusters with a modality gap."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((values, dim)))
    gap_image, gap_text = _unit(rng.standard_normal(dim)), _unit(rng.standard_normal(dim))
    labels = rng.permutation(np.repeat(np.arange(values), n_per))
    noise = spread * rng.standard_normal((len(labels), dim)) / np.sqrt(dim)
    vectors = _unit(0.35 * centres[labels] + noise + 0.6 * gap_image)
    text = _unit(0.35 * centres + text_noise * rng.standard_normal((values, dim)) / np.sqrt(dim) + 0.6 * gap_text)
    return vectors, text, labels, centres


def names(count: int) -> tuple[str, ...]:
    return tuple(f"v{i}" for i in range(count))


def test_temperature_recovers_a_known_scaling() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, size=(4000, 5))
    true_t = 3.0
    p = softmax(logits / true_t)
    labels = np.array([rng.choice(5, p=row) for row in p])
    assert fit_temperature(logits, labels) == pytest.approx(true_t, rel=0.1)


def test_zero_shot_at_clip_scale_is_over_confident_and_calibration_fixes_it() -> None:
    vectors, text, labels, _ = clusters()
    cal = calibrate_attribute("kind", names(6), False, vectors @ text.T, vectors, labels, SCALE)
    assert cal.temperature is not None and cal.temperature > 1.0
    report = cal.report
    assert report["ece_after"] <= report["ece_before"]
    assert report["accuracy"]["zero_shot"] > 1 / 6 + 0.1  # weak but better than chance
    json.dumps(report)  # the report is JSON-ready


def test_accepted_tags_hold_the_target_precision_on_items_not_calibrated_on() -> None:
    vectors, text, labels, _ = clusters(n_per=150, seed=2)
    cosines = vectors @ text.T
    rng = np.random.default_rng(0)
    train = rng.permutation(len(labels))[:450]
    test = np.setdiff1d(np.arange(len(labels)), train)
    target = 0.9
    cal = calibrate_attribute("kind", names(6), False, cosines[train], vectors[train], labels[train], SCALE)
    probs = cal.probabilities(cosines[test], vectors[test], SCALE)
    accepted, right = [], []
    for row, truth in zip(probs, labels[test], strict=True):
        ((value, _, kind),) = decide(row, cal, default_threshold=0.8, review_band=0.25)
        accepted.append(kind == "accept")
        right.append(value == truth)
    accepted_arr, right_arr = np.array(accepted), np.array(right)
    assert accepted_arr.mean() > 0.2  # the calibration does accept a real share of items
    assert right_arr[accepted_arr].mean() >= target - 0.05
    held = cal.report["held_out"]  # the promise, measured on folds the thresholds were not chosen on
    assert held["precision"] >= target - 0.05
    assert all(t is None or 0.0 < t <= 1.0 for t in cal.thresholds)


def test_a_value_that_cannot_reach_the_target_is_never_accepted() -> None:
    vectors, text, labels, centres = clusters(n_per=100, seed=3)
    # Values 0 and 1 look the same (same cluster, same label direction): no score can tell them apart.
    rng = np.random.default_rng(3)
    both = np.isin(labels, [0, 1])
    noise = 1.6 * rng.standard_normal((int(both.sum()), vectors.shape[1])) / np.sqrt(vectors.shape[1])
    vectors[both] = _unit(0.35 * centres[0] + noise + 0.6 * _unit(vectors[both].mean(axis=0)))
    text[1] = text[0]
    cal = calibrate_attribute("kind", names(6), False, vectors @ text.T, vectors, labels, SCALE)
    assert cal.thresholds[0] is None and cal.thresholds[1] is None
    assert any(t is not None for t in cal.thresholds[2:])
    assert cal.report["values"]["v0"]["accepted"] == 0
    row = np.zeros(6, dtype=np.float32)
    row[0] = 0.999
    ((value, _, kind),) = decide(row, cal, default_threshold=0.8, review_band=0.25)
    assert (value, kind) == (0, "review")


def test_the_probe_beats_zero_shot_when_label_vectors_mislead() -> None:
    vectors, text, labels, _ = clusters(n_per=60, seed=4)
    misleading = text[[1, 2, 3, 0, 5, 4]]  # the prompts point at the wrong clusters
    cal = calibrate_attribute("kind", names(6), False, vectors @ misleading.T, vectors, labels, SCALE)
    accuracy = cal.report["accuracy"]
    assert accuracy["zero_shot"] < 0.2
    assert accuracy["probe"] > 0.6
    assert cal.probe is not None and cal.blend > 0.5
    assert accuracy["blended"] > 0.6


def test_learning_curve_reports_every_scorer_and_held_out_precision() -> None:
    vectors, text, labels, _ = clusters(n_per=60, seed=5)
    curve = learning_curve(vectors @ text.T, vectors, labels, SCALE, shots=(5, 20), repeats=2)
    assert set(curve["shots"]) == {"5", "20"}
    for entry in curve["shots"].values():
        assert {"zero_shot", "calibrated", "probe", "blended", "coverage", "precision"} <= set(entry)
        assert entry["test_items"] > entry["train_items"] or entry["train_items"] == 6 * 20
    assert curve["shots"]["20"]["probe"] > curve["shots"]["5"]["probe"]


def test_multi_label_attributes_get_platt_scaling_and_per_value_thresholds() -> None:
    vectors, text, labels, _ = clusters(n_per=80, values=4, seed=6)
    rng = np.random.default_rng(6)
    multi = np.zeros((len(labels), 4), dtype=bool)
    multi[np.arange(len(labels)), labels] = True
    extra = rng.random(len(labels)) < 0.3
    multi[extra, (labels[extra] + 1) % 4] = True  # some items have two values
    cal = calibrate_attribute("tags", names(4), True, vectors @ text.T, vectors, multi, SCALE)
    assert cal.platt is not None and cal.temperature is None and len(cal.platt) == 4
    probs = cal.probabilities(vectors @ text.T, vectors, SCALE)
    assert probs.shape == (len(labels), 4) and np.all((probs >= 0) & (probs <= 1))
    assert cal.report["held_out"]["precision"] >= 0.85
    decisions = decide(probs[np.flatnonzero(extra)[0]], cal, default_threshold=0.8, review_band=0.25)
    assert decisions and all(kind in {"accept", "review", "reject"} for _, _, kind in decisions)


def test_values_with_a_single_label_keep_their_zero_shot_share() -> None:
    vectors, text, labels, _ = clusters(n_per=30, seed=7)
    keep = np.concatenate([np.flatnonzero(labels != 5), np.flatnonzero(labels == 5)[:1]])
    cal = calibrate_attribute("kind", names(6), False, (vectors @ text.T)[keep], vectors[keep], labels[keep], SCALE)
    if cal.probe is not None:
        assert 5 not in cal.probe.classes
    probs = cal.probabilities(vectors @ text.T, vectors, SCALE)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert probs[:, 5].max() > 0


def test_calibration_files_round_trip_and_refuse_other_versions(tmp_path) -> None:
    vectors, text, labels, _ = clusters(n_per=40, seed=8)
    cosines = vectors @ text.T
    attr = calibrate_attribute("kind", names(6), False, cosines, vectors, labels, SCALE)
    cal = Calibration.create("f" * 64, "catalens-mini", 0.9, {"kind": attr})
    path = tmp_path / "cal.json"
    cal.save(path)
    again = Calibration.load(path)
    assert again.id == cal.id and again.attributes["kind"].thresholds == attr.thresholds
    np.testing.assert_allclose(
        again.attributes["kind"].probabilities(cosines, vectors, SCALE),
        attr.probabilities(cosines, vectors, SCALE),
        rtol=1e-5,
        atol=1e-6,
    )
    again.check_fits(taxonomy="f" * 64, model="catalens-mini")
    with pytest.raises(CalibrationError, match="another taxonomy"):
        again.check_fits(taxonomy="0" * 64, model="catalens-mini")
    data = json.loads(path.read_text())
    data["schema_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="version 99"):
        Calibration.load(path)
    path.write_text("{not json")
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.load(path)
    with pytest.raises(CalibrationError, match="bad attribute calibration"):
        AttributeCalibration.from_dict({"attribute": "kind", "values": ["a"]})


def test_decide_without_calibration_uses_the_default_threshold_and_band() -> None:
    row = np.array([0.7, 0.2, 0.1])
    assert decide(row, None, default_threshold=0.8, review_band=0.25) == [(0, pytest.approx(0.7), "review")]
    assert decide(row, None, default_threshold=0.6, review_band=0.25)[0][2] == "accept"
    assert decide(row, None, default_threshold=0.99, review_band=0.25)[0][2] == "reject"
    multi = decide(np.array([0.9, 0.7, 0.1]), None, default_threshold=0.8, review_band=0.25, multi_label=True)
    assert [(v, kind) for v, _, kind in multi] == [(0, "accept"), (1, "review")]
    nothing = decide(np.array([0.1, 0.3]), None, default_threshold=0.8, review_band=0.25, multi_label=True)
    assert [(v, kind) for v, _, kind in nothing] == [(1, "reject")]


def test_expected_calibration_error() -> None:
    assert expected_calibration_error(np.array([]), np.array([])) == 0.0
    assert expected_calibration_error(np.full(10, 0.9), np.ones(10, bool)) == pytest.approx(0.1)
    conf = np.array([0.25] * 4 + [0.75] * 4)
    correct = np.array([1, 0, 0, 0, 1, 1, 1, 0], bool)
    assert expected_calibration_error(conf, correct) == pytest.approx(0.0)


def test_bad_inputs_are_calibration_errors() -> None:
    vectors, text, labels, _ = clusters(n_per=5, seed=9)
    cosines = vectors @ text.T
    with pytest.raises(CalibrationError, match="cosines"):
        calibrate_attribute("kind", names(5), False, cosines, vectors, labels, SCALE)
    with pytest.raises(CalibrationError, match="labels"):
        calibrate_attribute("kind", names(6), False, cosines, vectors, labels + 1, SCALE)
    with pytest.raises(CalibrationError, match="at least 2"):
        calibrate_attribute("kind", names(6), False, cosines[:1], vectors[:1], labels[:1], SCALE)
