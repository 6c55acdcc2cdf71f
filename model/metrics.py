"""Figures of a classifier's answers that need only numpy: intervals and what a threshold decides.

Shared by `scones evaluate` (serving side, no torch) and `model.training` (cross-validation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (exact enough at the ends, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Decided:
    """What a confidence threshold does to a set of predictions."""

    threshold: float
    n: int
    decided: int  # top probability >= threshold
    errors: int  # wrong among the decided

    @property
    def share(self) -> float:
        return self.decided / self.n if self.n else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.decided if self.decided else 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {
            "threshold": self.threshold,
            "n": self.n,
            "decided": self.decided,
            "share_decided": round(self.share, 4),
            "errors_among_decided": self.errors,
            "error_rate_among_decided": round(self.error_rate, 4),
            "error_rate_upper_95": round(wilson_interval(self.errors, self.decided)[1], 4),
        }


def decided_at(probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> Decided:
    top = probabilities.max(axis=1)
    decided = top >= threshold
    wrong = probabilities.argmax(axis=1) != labels
    return Decided(threshold, len(labels), int(decided.sum()), int((decided & wrong).sum()))
