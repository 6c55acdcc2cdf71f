"""Figures of a classifier's answers that need only numpy: intervals, what a threshold decides, calibration.

Shared by `scones evaluate` (serving side, no torch) and `model.training` (cross-validation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class ReliabilityBin:
    """The predictions whose top probability fell in [low, high) (the last bin includes its high end)."""

    low: float
    high: float
    n: int
    correct: int
    mean_confidence: float  # 0.0 for an empty bin

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, float | int | None]:
        """An empty bin's accuracy and mean confidence are None: there is nothing to measure."""
        return {
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "n": self.n,
            "correct": self.correct,
            "accuracy": round(self.accuracy, 4) if self.n else None,
            "mean_confidence": round(self.mean_confidence, 4) if self.n else None,
        }


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram's data: accuracy against top-class confidence, in equal-width bins."""

    bins: tuple[ReliabilityBin, ...]

    @property
    def n(self) -> int:
        return sum(item.n for item in self.bins)

    @property
    def ece(self) -> float:
        """Expected calibration error: the mean |accuracy - confidence| of the bins, weighted by count."""
        if not self.n:
            return 0.0
        return sum(item.n * abs(item.accuracy - item.mean_confidence) for item in self.bins) / self.n

    def to_dict(self) -> dict[str, Any]:
        return {"ece": round(self.ece, 4), "n": self.n, "bins": [item.to_dict() for item in self.bins]}


def reliability(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> Reliability:
    """Bins from 1/k (the lowest top probability k classes allow) to 1.0, e.g. 0.5-1.0 for 2 classes."""
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError(f"probabilities must be N x k with k >= 2, not {probabilities.shape}")
    low = 1.0 / probabilities.shape[1]
    # Rounded so that an edge such as 0.85 is 0.85, not linspace's 0.8500000000000001.
    edges = np.round(np.linspace(low, 1.0, n_bins + 1), 10)
    top = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    # [low, high): searchsorted on the inner edges; a float a hair under 1/k still lands in bin 0.
    index = np.searchsorted(edges[1:-1], top, side="right")
    bins = []
    for b in range(n_bins):
        members = index == b
        count = int(members.sum())
        bins.append(
            ReliabilityBin(
                low=float(edges[b]),
                high=float(edges[b + 1]),
                n=count,
                correct=int(correct[members].sum()),
                mean_confidence=float(top[members].mean()) if count else 0.0,
            )
        )
    return Reliability(tuple(bins))
