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

from model.metrics import Decided, decided_at, wilson_interval


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


def choose_threshold(
    probabilities: np.ndarray, labels: np.ndarray, max_error: float = 0.01, step: float = 0.005
) -> Decided:
    """The lowest threshold on a grid of `step` whose errors among the decided have a 95 % Wilson upper
    bound within `max_error` (the grid is coarse on purpose: a threshold is not a fitted parameter)."""
    grid = np.round(np.arange(0.5, 1.0, step), 4)
    for threshold in grid:
        result = decided_at(probabilities, labels, float(threshold))
        if result.decided and wilson_interval(result.errors, result.decided)[1] <= max_error:
            return result
    return decided_at(probabilities, labels, 1.0)
