"""A linear probe per attribute: logistic regression on the stored image vectors, for when people labelled items.

CLIP-style linear probes beat zero-shot prompts by large margins once a few labelled examples per value exist
(Radford et al. 2021, section 3.2). The probe is scikit-learn's ``LogisticRegression`` (multinomial for a
single-label attribute, one binary model per value for a multi-label one) on the unit-length vectors as they are.

Regularisation: ``C`` is chosen per attribute by :mod:`.crossfit` from :data:`PROBE_C_GRID` by out-of-fold
log-loss (the best ``C`` differs by orders of magnitude between models and catalogs: 10 on catalens-mini's demo
catalog, 1000+ on tight CLIP-like clusters). The probe's logits also get their own temperature, fitted on
out-of-fold logits, so that its probabilities can be blended with the calibrated zero-shot ones.

A value with fewer than two labelled items gets no probe weights: the probe then speaks only for the values it
was trained on and leaves the other values their calibrated zero-shot probability (:func:`probe_probabilities`).
"""

from __future__ import annotations

import base64
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from catalens.indexer.tagging.errors import CalibrationError
from catalens.indexer.tagging.scaling import sigmoid, softmax

#: Candidate inverse regularisation strengths (scikit-learn's ``C``), weakest regularisation last.
PROBE_C_GRID = (1.0, 10.0, 100.0, 1000.0)
#: Fewest labelled items a value needs (and, multi-label, fewest items without it) to get probe weights.
MIN_PER_VALUE = 2


@dataclass(frozen=True, eq=False)
class Probe:
    """A fitted linear probe over some of an attribute's values.

    Attributes:
        classes: the value indices the probe covers, ascending.
        coef: ``(len(classes), d)`` float32 weights.
        intercept: ``(len(classes),)`` float32 biases.
        multi_label: one sigmoid per value (True) or one softmax over the covered values (False).
        c: the regularisation it was fitted with.
        temperature: the logits are divided by it before the softmax / sigmoid.
    """

    classes: tuple[int, ...]
    coef: np.ndarray
    intercept: np.ndarray
    multi_label: bool
    c: float
    temperature: float = 1.0

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, len(classes))`` raw logits (one matrix product), before the temperature."""
        return np.asarray(vectors, dtype=np.float32) @ self.coef.T + self.intercept

    def with_temperature(self, temperature: float) -> Probe:
        """The same probe with another logit temperature."""
        return Probe(self.classes, self.coef, self.intercept, self.multi_label, self.c, float(temperature))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; weights as base64 little-endian float32 (exact and ~3x smaller than decimal lists)."""
        return {
            "classes": list(self.classes),
            "dim": int(self.coef.shape[1]),
            "coef": base64.b64encode(self.coef.astype("<f4").tobytes()).decode("ascii"),
            "intercept": [float(x) for x in self.intercept],
            "multi_label": self.multi_label,
            "c": self.c,
            "temperature": self.temperature,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Probe:
        """Inverse of :meth:`to_dict`; :class:`CalibrationError` if the fields do not fit together."""
        try:
            classes = tuple(int(c) for c in data["classes"])
            dim = int(data["dim"])
            coef = np.frombuffer(base64.b64decode(data["coef"]), dtype="<f4").astype(np.float32)
            coef = coef.reshape(len(classes), dim)
            intercept = np.asarray(data["intercept"], dtype=np.float32).reshape(len(classes))
            return cls(
                classes, coef, intercept, bool(data["multi_label"]), float(data["c"]), float(data["temperature"])
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationError(f"bad probe in calibration file: {e}") from e


def fit_probe(vectors: np.ndarray, labels: np.ndarray, n_values: int, *, multi_label: bool, c: float) -> Probe | None:
    """Fit a probe on labelled vectors, or ``None`` when fewer than two values have enough labelled items.

    Args:
        vectors: ``(n, d)`` unit-length image vectors.
        labels: ``(n,)`` value indices (single-label) or ``(n, V)`` bool (multi-label).
        n_values: ``V``, the attribute's number of values.
        multi_label: which kind of attribute.
        c: scikit-learn's inverse regularisation strength.
    """
    from sklearn.linear_model import LogisticRegression  # scikit-learn imports take ~0.5 s: only when fitting

    x = np.asarray(vectors, dtype=np.float32)
    if multi_label:
        y = np.asarray(labels, dtype=bool)
        pos = y.sum(axis=0)
        covered = [v for v in range(n_values) if pos[v] >= MIN_PER_VALUE and len(y) - pos[v] >= MIN_PER_VALUE]
        if not covered:
            return None
        coefs, biases = [], []
        for v in covered:
            model = LogisticRegression(C=c, max_iter=300, tol=1e-3)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning: a loose fit is fine for a probe
                model.fit(x, y[:, v])
            coefs.append(model.coef_[0])
            biases.append(model.intercept_[0])
        return Probe(tuple(covered), np.asarray(coefs, np.float32), np.asarray(biases, np.float32), True, c)
    idx = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(idx, minlength=n_values)
    covered = [v for v in range(n_values) if counts[v] >= MIN_PER_VALUE]
    if len(covered) < 2:
        return None
    keep = np.isin(idx, covered)
    model = LogisticRegression(C=c, max_iter=300, tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x[keep], idx[keep])
    coef, bias = model.coef_, model.intercept_
    if len(covered) == 2:  # scikit-learn fits one binary row; as a 2-way softmax it is (0, w) vs (0, b)
        coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
        bias = np.array([0.0, bias[0]])
    return Probe(tuple(covered), np.asarray(coef, np.float32), np.asarray(bias, np.float32), False, c)


def probe_probabilities(probe: Probe, logits: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The probe's ``(n, V)`` probabilities from its raw ``logits``, the ``base`` probabilities filling the gaps.

    Single-label: the values the probe does not cover keep their ``base`` (calibrated zero-shot) probability and
    the probe shares out the rest among its values. Multi-label: uncovered values keep ``base``.
    """
    out = base.astype(np.float32, copy=True)
    cols = np.asarray(probe.classes, dtype=np.int64)
    z = logits / np.float32(probe.temperature)
    if probe.multi_label:
        out[:, cols] = sigmoid(z)
        return out
    if len(cols) == out.shape[1]:
        return softmax(z).astype(np.float32)
    rest = 1.0 - out[:, cols].sum(axis=1, keepdims=True)  # the base mass of the uncovered values is kept
    out[:, cols] = softmax(z) * (1.0 - rest)
    return out
