"""Probability scaling for tagging: softmax / sigmoid, temperature and Platt fits, log-loss and calibration error.

Zero-shot CLIP logits (``logit_scale * cosine``, scale 100 for CLIP) make a softmax that is far more confident than
the classifier is right; one temperature per attribute (single-label) or a Platt sigmoid per value (multi-label)
fitted on labelled items fixes most of that (Guo et al. 2017, "On Calibration of Modern Neural Networks").
Everything here is numpy on small arrays, float64 inside the fits for stable optimisation.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

_EPS = 1e-12
#: Temperatures searched (log-space bounds): 1/50 .. 500 covers every logit scale a CLIP-like model uses.
_LOG_T_BOUNDS = (float(np.log(1 / 50)), float(np.log(500)))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(n, V)`` logits, stable for large logits; keeps the input's float dtype."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Elementwise logistic function, without overflow warnings for large ``|x|``."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def log_loss(probs: np.ndarray, labels: np.ndarray, *, multi_label: bool) -> float:
    """Mean negative log-likelihood: of the true value (single-label) or of every value's yes/no (multi-label)."""
    p = np.clip(probs.astype(np.float64), _EPS, 1 - _EPS)
    if multi_label:
        y = labels.astype(bool)
        return float(-(np.log(p[y]).sum() + np.log1p(-p[~y]).sum()) / max(p.size, 1))
    return float(-np.log(p[np.arange(len(labels)), labels]).mean()) if len(labels) else 0.0


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature ``T`` minimising the log-loss of ``softmax(logits / T)`` on labelled rows.

    Args:
        logits: ``(n, V)`` uncalibrated logits (``logit_scale * cosines`` for zero-shot).
        labels: ``(n,)`` value indices.

    Returns:
        ``T > 0``; ``T > 1`` means the logits were over-confident. 1.0 when there is nothing to fit on.
    """
    if len(labels) == 0:
        return 1.0
    z = logits.astype(np.float64)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        s -= s.max(axis=1, keepdims=True)
        return float((np.log(np.exp(s).sum(axis=1)) - s[rows, labels]).mean())

    result = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def fit_platt(scores: np.ndarray, positive: np.ndarray, *, iterations: int = 50) -> tuple[float, float]:
    """Platt scaling: ``(a, b)`` with ``P(value | score) = sigmoid(a * score + b)``, fitted by Newton's method.

    Uses Platt's smoothed targets ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)`` so that separable or one-sided
    data (a value with no positive example) still gets finite, sensible parameters.

    Args:
        scores: ``(n,)`` raw scores (cosines) of one value.
        positive: ``(n,)`` bool, whether each item has the value.
    """
    x = scores.astype(np.float64)
    y = positive.astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    t = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    # Standardise the score so that Newton's steps are well-scaled (cosines span a few hundredths).
    mu, sd = float(x.mean()) if len(x) else 0.0, float(x.std()) if len(x) > 1 else 1.0
    sd = sd if sd > 1e-9 else 1.0
    u = (x - mu) / sd
    a, b = 0.0, float(np.log(t.mean() / (1 - t.mean()))) if len(x) else 0.0
    for _ in range(iterations):
        p = sigmoid(a * u + b)
        g = np.array([np.dot(p - t, u), np.sum(p - t)])
        w = p * (1 - p) + 1e-9
        h = np.array([[np.dot(w, u * u) + 1e-6, np.dot(w, u)], [np.dot(w, u), np.sum(w) + 1e-6]])
        step = np.linalg.solve(h, g)
        a, b = a - float(step[0]), b - float(step[1])
        if float(np.abs(step).max()) < 1e-8:
            break
    return a / sd, b - a * mu / sd


def expected_calibration_error(probs_top: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: the mean ``|accuracy - confidence|`` over equal-width confidence bins.

    Args:
        probs_top: ``(n,)`` the confidence of each prediction (the top probability, or any yes/no probability).
        correct: ``(n,)`` bool, whether each prediction was right.
        bins: number of equal-width bins over ``[0, 1]`` (15, as in Guo et al. 2017).

    Returns:
        The bin-size-weighted mean gap, in ``[0, 1]``; 0.0 for no predictions.
    """
    conf = np.asarray(probs_top, dtype=np.float64).ravel()
    hit = np.asarray(correct, dtype=np.float64).ravel()
    if conf.size == 0:
        return 0.0
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)
    gap = np.bincount(which, weights=hit - conf, minlength=bins)
    return float(np.abs(gap).sum() / conf.size) if counts.sum() else 0.0
