"""Cross-fitting: out-of-fold probabilities for every labelled item, the fold structure behind honest estimates.

The labelled items are split into ``K`` folds (stratified by value for single-label attributes). For each fold,
the zero-shot scaling (temperature or Platt) and the linear probe are fitted on the other ``K - 1`` folds and
applied to the fold itself, so every labelled item gets probabilities from models that never saw its label
("out-of-fold", OOF). The few remaining choices (the probe's ``C`` from a small grid, the probe's temperature, the
blend weight from five values) are then made on those OOF probabilities by log-loss: a handful of scalar choices
over many items, which cannot overfit much (and the thresholds, which can, are held out separately in
:mod:`.thresholds`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from catalens.indexer.tagging.probe import PROBE_C_GRID, Probe, fit_probe
from catalens.indexer.tagging.scaling import fit_platt, fit_temperature, log_loss, sigmoid, softmax

#: Blend weights of the probe searched (0 = calibrated zero-shot only, 1 = probe only).
BLEND_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True, eq=False)
class Scaling:
    """Zero-shot scaling of one attribute: a temperature (single-label) or per-value Platt ``(a, b)`` pairs."""

    temperature: float | None
    platt: tuple[tuple[float, float], ...] | None

    def probabilities(self, cosines: np.ndarray, logit_scale: float) -> np.ndarray:
        """Calibrated ``(n, V)`` zero-shot probabilities (float32)."""
        cos = np.asarray(cosines, dtype=np.float32)
        if self.platt is not None:
            a = np.asarray([p[0] for p in self.platt], dtype=np.float32)
            b = np.asarray([p[1] for p in self.platt], dtype=np.float32)
            return sigmoid(cos * a + b).astype(np.float32)
        t = self.temperature if self.temperature is not None else 1.0
        return softmax(cos * np.float32(logit_scale / t)).astype(np.float32)


def fit_scaling(cosines: np.ndarray, labels: np.ndarray, logit_scale: float, *, multi_label: bool) -> Scaling:
    """Fit the zero-shot scaling of one attribute on labelled rows."""
    if multi_label:
        y = np.asarray(labels, dtype=bool)
        return Scaling(None, tuple(fit_platt(cosines[:, v], y[:, v]) for v in range(cosines.shape[1])))
    return Scaling(fit_temperature(np.asarray(cosines, np.float64) * logit_scale, labels), None)


def assign_folds(labels: np.ndarray, folds: int, seed: int, *, multi_label: bool) -> np.ndarray:
    """``(n,)`` fold numbers in ``[0, K)``: stratified by value (single-label), else a random balanced split.

    Stratified by hand rather than with scikit-learn's ``StratifiedKFold`` because few-shot data routinely has
    values with fewer items than folds (which it warns about or refuses): such a value's items simply land in
    fewer folds.
    """
    n = len(labels)
    k = max(1, min(folds, n))
    rng = np.random.default_rng(seed)
    fold = np.empty(n, dtype=np.int64)
    if multi_label:
        fold[rng.permutation(n)] = np.arange(n) % k
        return fold
    offset = 0
    for v in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == v))
        fold[rows] = (np.arange(len(rows)) + offset) % k
        offset += len(rows)  # continue the round-robin so small values do not all start in fold 0
    return fold


@dataclass(frozen=True, eq=False)
class CrossFit:
    """Out-of-fold probabilities of one attribute's labelled items and the choices made on them.

    Attributes:
        fold: ``(n,)`` each item's fold.
        zero_shot: ``(n, V)`` uncalibrated softmax of ``logit_scale * cosines`` (needs no fitting).
        calibrated: ``(n, V)`` OOF calibrated zero-shot probabilities.
        probe: ``(n, V)`` OOF probe probabilities (gaps filled by ``calibrated``), or None when no fold had a probe.
        blended: ``(n, V)`` OOF probabilities at the chosen blend (what thresholds are chosen on).
        blend: the chosen probe weight.
        c: the chosen probe regularisation (None without a probe).
        probe_temperature: the probe's logit temperature fitted on OOF logits.
        scalings: the fold models' zero-shot scalings.
        probes: the fold models' probes at the chosen ``c`` (those that could be fitted).
    """

    fold: np.ndarray
    zero_shot: np.ndarray
    calibrated: np.ndarray
    probe: np.ndarray | None
    blended: np.ndarray
    blend: float
    c: float | None
    probe_temperature: float
    scalings: tuple[Scaling, ...] = ()
    probes: tuple[Probe, ...] = ()


def _combine(z: np.ndarray, mask: np.ndarray, base: np.ndarray, temperature: float, multi_label: bool) -> np.ndarray:
    """Probe probabilities from OOF logits ``z`` where ``mask`` (covered values), ``base`` elsewhere."""
    if multi_label:
        return np.where(mask, sigmoid(z / temperature), base)
    any_cov: np.ndarray = np.asarray(mask.any(axis=1, keepdims=True))
    zz = np.where(mask, z / temperature, -np.inf)
    zz[~any_cov[:, 0]] = 0.0  # rows no probe covers: any finite logits (their base is kept below)
    q = softmax(zz)
    covered_mass = (base * mask).sum(axis=1, keepdims=True)
    return np.where(mask & any_cov, q * covered_mass, base)


def _fit_probe_temperature(
    z: np.ndarray, mask: np.ndarray, base: np.ndarray, labels: np.ndarray, multi_label: bool
) -> tuple[float, float]:
    """The probe temperature minimising OOF log-loss, and that loss."""

    def loss(log_t: float) -> float:
        return log_loss(_combine(z, mask, base, float(np.exp(log_t)), multi_label), labels, multi_label=multi_label)

    result = minimize_scalar(loss, bounds=(np.log(0.05), np.log(50.0)), method="bounded", options={"xatol": 1e-3})
    return float(np.exp(result.x)), float(result.fun)


def cross_fit(
    cosines: np.ndarray,
    vectors: np.ndarray,
    labels: np.ndarray,
    logit_scale: float,
    *,
    multi_label: bool,
    folds: int = 5,
    seed: int = 0,
    c_grid: tuple[float, ...] = PROBE_C_GRID,
) -> CrossFit:
    """Out-of-fold zero-shot, calibrated, probe and blended probabilities of labelled items.

    Args:
        cosines: ``(n, V)`` cosines of the items to the values' label vectors.
        vectors: ``(n, d)`` the items' image vectors.
        labels: ``(n,)`` value indices, or ``(n, V)`` bool for a multi-label attribute.
        logit_scale: the model's zero-shot logit scale.
        multi_label: which kind of attribute.
        folds: ``K``; fewer when there are fewer items.
        seed: the fold split's seed.
        c_grid: probe regularisations to choose from by OOF log-loss.
    """
    cos = np.asarray(cosines, dtype=np.float32)
    n, n_values = cos.shape
    fold = assign_folds(labels, folds, seed, multi_label=multi_label)
    zero_shot = softmax(cos * np.float32(logit_scale))
    calibrated = np.empty((n, n_values), dtype=np.float32)
    z = {c: np.zeros((n, n_values), dtype=np.float32) for c in c_grid}
    mask = {c: np.zeros((n, n_values), dtype=bool) for c in c_grid}
    probes: dict[float, list[Probe]] = {c: [] for c in c_grid}
    scalings: list[Scaling] = []
    for k in range(int(fold.max()) + 1 if n else 0):
        test, train = fold == k, fold != k
        if not train.any():  # a single fold: nothing held out to fit on
            calibrated[test] = zero_shot[test]
            continue
        scaling = fit_scaling(cos[train], labels[train], logit_scale, multi_label=multi_label)
        scalings.append(scaling)
        calibrated[test] = scaling.probabilities(cos[test], logit_scale)
        for c in c_grid:
            probe = fit_probe(vectors[train], labels[train], n_values, multi_label=multi_label, c=c)
            if probe is not None:
                probes[c].append(probe)
                cols = np.asarray(probe.classes)
                rows = np.flatnonzero(test)
                z[c][np.ix_(rows, cols)] = probe.logits(vectors[test])
                mask[c][np.ix_(rows, cols)] = True
    best: tuple[float, float, float] | None = None  # (loss, c, temperature)
    for c in c_grid:
        if not mask[c].any():
            continue
        t, loss = _fit_probe_temperature(z[c], mask[c], calibrated, labels, multi_label)
        if best is None or loss < best[0] - 1e-9:
            best = (loss, c, t)
    if best is None:
        return CrossFit(fold, zero_shot, calibrated, None, calibrated, 0.0, None, 1.0, tuple(scalings))
    _, c_best, t_best = best
    probe_oof = _combine(z[c_best], mask[c_best], calibrated, t_best, multi_label).astype(np.float32)
    losses = [log_loss((1 - w) * calibrated + w * probe_oof, labels, multi_label=multi_label) for w in BLEND_GRID]
    w_best = BLEND_GRID[int(np.argmin(losses))]  # argmin takes the first (smallest weight) of equal losses
    blended = ((1 - w_best) * calibrated + w_best * probe_oof).astype(np.float32)
    return CrossFit(
        fold, zero_shot, calibrated, probe_oof, blended, w_best, c_best, t_best, tuple(scalings), tuple(probes[c_best])
    )


def ensemble_scaling(fit: CrossFit) -> Scaling | None:
    """The fold scalings averaged: temperatures geometrically, Platt ``(a, b)`` arithmetically (None: no folds)."""
    if not fit.scalings:
        return None
    if fit.scalings[0].platt is not None:
        pairs = np.asarray([s.platt for s in fit.scalings], dtype=np.float64).mean(axis=0)
        return Scaling(None, tuple((float(a), float(b)) for a, b in pairs))
    temps = [s.temperature or 1.0 for s in fit.scalings]
    return Scaling(float(np.exp(np.mean(np.log(temps)))), None)


def ensemble_probe(fit: CrossFit) -> Probe | None:
    """The fold probes as one linear probe: per value, the mean weights of the folds that cover it.

    Averaging linear models' weights averages their logits, so this is the ensemble of the fold models, whose
    out-of-fold probabilities the blend, the probe temperature and the thresholds were chosen on. Shipping it
    (rather than a probe refitted on every item, which at the same ``C`` is more confident than the fold
    models) keeps the thresholds' promise: measured on few-shot data, a refitted probe accepted tags at a
    precision several points below what the folds promised.
    """
    if fit.c is None or fit.blend == 0.0 or not fit.probes:
        return None
    classes = sorted({v for p in fit.probes for v in p.classes})
    dim = fit.probes[0].coef.shape[1]
    coef = np.zeros((len(classes), dim), dtype=np.float64)
    bias = np.zeros(len(classes), dtype=np.float64)
    count = np.zeros(len(classes), dtype=np.float64)
    where = {v: i for i, v in enumerate(classes)}
    for p in fit.probes:
        rows = [where[v] for v in p.classes]
        coef[rows] += p.coef
        bias[rows] += p.intercept
        count[rows] += 1
    coef /= count[:, None]
    bias /= count
    first = fit.probes[0]
    return Probe(
        tuple(classes),
        coef.astype(np.float32),
        bias.astype(np.float32),
        first.multi_label,
        first.c,
        fit.probe_temperature,
    )
