"""The monitor's numbers: counts, confidence figures and the low-confidence rate of a capture."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.read import Capture
from scones_common.constants import DEFAULT_CONFIDENCE_THRESHOLD

DEFAULT_THRESHOLD = DEFAULT_CONFIDENCE_THRESHOLD  # ConfidenceThreshold's default in template.yaml
UNREADABLE = "(unreadable answer)"  # the label of an answer that was not the algorithm's JSON array


@dataclass
class Summary:
    source: str
    endpoints: list[str]
    files: int
    records: int
    labels: dict[str, int]
    threshold: float
    with_confidence: int
    mean_confidence: float | None
    median_confidence: float | None
    min_confidence: float | None
    low_confidence: int
    low_confidence_rate: float | None  # over the records with a confidence
    first: datetime | None
    last: datetime | None
    skipped_lines: int
    problems: list[str] = field(default_factory=list)

    @property
    def span_seconds(self) -> float:
        return (self.last - self.first).total_seconds() if self.first and self.last else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "endpoints": self.endpoints,
            "files": self.files,
            "records": self.records,
            "labels": self.labels,
            "threshold": self.threshold,
            "mean_confidence": _round(self.mean_confidence),
            "median_confidence": _round(self.median_confidence),
            "min_confidence": _round(self.min_confidence),
            "low_confidence": self.low_confidence,
            "low_confidence_rate": _round(self.low_confidence_rate),
            "first": _iso(self.first),
            "last": _iso(self.last),
            "span_seconds": round(self.span_seconds, 3),
            "skipped_lines": self.skipped_lines,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def summarize(capture: Capture, threshold: float = DEFAULT_THRESHOLD) -> Summary:
    records = capture.records
    confidences = [r.confidence for r in records if r.confidence is not None]
    low = sum(1 for c in confidences if c < threshold)  # FilterInferences rejects below, not at
    labels = Counter(r.label or UNREADABLE for r in records)
    return Summary(
        source=f"s3://{capture.bucket}/{capture.prefix}",
        endpoints=sorted({r.endpoint for r in records if r.endpoint}),
        files=len(capture.files),
        records=len(records),
        labels=dict(sorted(labels.items())),
        threshold=threshold,
        with_confidence=len(confidences),
        mean_confidence=statistics.fmean(confidences) if confidences else None,
        median_confidence=statistics.median(confidences) if confidences else None,
        min_confidence=min(confidences) if confidences else None,
        low_confidence=low,
        low_confidence_rate=low / len(confidences) if confidences else None,
        first=records[0].time if records else None,
        last=records[-1].time if records else None,
        skipped_lines=len(capture.problems),
        problems=list(capture.problems),
    )


def format_duration(seconds: float, *, precise: bool = False) -> str:
    """'5 min' in chart titles; precise (summary table): one decimal, units switched at twice the size."""
    digits = 1 if precise else 0
    minute, hour, day = (120, 7200, 172800) if precise else (60, 3600, 86400)
    if seconds < minute:
        return f"{seconds:.{digits}f} s"
    if seconds < hour:
        return f"{seconds / 60:.{digits}f} min"
    if seconds < day:
        return f"{seconds / 3600:.{digits}f} h"
    return f"{seconds / 86400:.{digits}f} {'days' if precise else 'd'}"


def _fmt(value: float | None, pattern: str = "{:.3f}") -> str:
    return "–" if value is None else pattern.format(value)


def summary_rows(summary: Summary) -> list[tuple[str, str]]:
    """The summary as (metric, value) rows: the terminal table and the HTML table show the same."""
    rows = [
        ("records", f"{summary.records:,} in {summary.files:,} file{'s' if summary.files != 1 else ''}"),
        ("endpoint", ", ".join(summary.endpoints) or "–"),
    ]
    for label, count in summary.labels.items():
        share = count / summary.records if summary.records else 0.0
        rows.append((f"label {label}", f"{count:,} ({share:.0%})"))
    rows += [
        ("mean confidence", _fmt(summary.mean_confidence)),
        ("median confidence", _fmt(summary.median_confidence)),
        ("lowest confidence", _fmt(summary.min_confidence)),
        (
            "low-confidence rate",
            f"{_fmt(summary.low_confidence_rate, '{:.1%}')} ({summary.low_confidence:,} of "
            f"{summary.with_confidence:,} below {summary.threshold:.2f})",
        ),
        ("first record", f"{summary.first:%Y-%m-%d %H:%M:%S} UTC" if summary.first else "–"),
        ("last record", f"{summary.last:%Y-%m-%d %H:%M:%S} UTC" if summary.last else "–"),
        ("time span", format_duration(summary.span_seconds, precise=True)),
    ]
    if summary.skipped_lines:
        rows.append(("skipped lines", f"{summary.skipped_lines:,} (not capture records)"))
    return rows
