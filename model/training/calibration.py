"""Temperature scaling and the confidence threshold, fitted on out-of-fold logits (numpy only).

A network trained with label smoothing is under-confident; one temperature T rescales its logits so
that "0.95" means right about 95 % of the time. The threshold is then the lowest top probability at
which the images decided (top probability >= threshold) keep their error rate within the target, by
the upper end of a 95 % Wilson interval rather than the point estimate: the out-of-fold set is 1,000
images, and a threshold picked on its point estimate would ride its noise.
"""

from __future__ import annotations

import math

import numpy as np

from model.metrics import Decided, decided_at


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    probabilities = softmax(logits, temperature)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(probabilities, 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the mean negative log-likelihood (golden-section on log T)."""
    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    for _ in range(80):
        if negative_log_likelihood(logits, labels, math.exp(a)) < negative_log_likelihood(
            logits, labels, math.exp(b)
        ):
            high, b = b, a
            a = high - ratio * (high - low)
        else:
            low, a = a, b
            b = low + ratio * (high - low)
    return round(math.exp((low + high) / 2), 4)


# Thresholds tried: every 0.005 up to 0.99, then every 0.001 (calibrated confidences crowd near 1).
THRESHOLD_GRID: tuple[float, ...] = tuple(
    round(float(t), 4) for t in np.concatenate([np.arange(0.5, 0.99, 0.005), np.arange(0.99, 1.0, 0.001)])
)


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray, max_error: float = 0.01) -> Decided:
    """The lowest threshold on THRESHOLD_GRID whose out-of-fold error rate among the decided images is at
    most half of `max_error`: the half is the margin for images the folds did not show. (Requiring the
    95 % Wilson upper bound within `max_error` instead would need about 400 decided images per error
    allowed, more than 1,000 out-of-fold images can give.)"""
    for threshold in THRESHOLD_GRID:
        result = decided_at(probabilities, labels, threshold)
        if result.decided and result.errors <= 0.5 * max_error * result.decided:
            return result
    return decided_at(probabilities, labels, 1.0)
