"""The monitor's charts over time, drawn with matplotlib as PNG bytes.

matplotlib is an optional extra (`pip install -e '.[monitor]'`; `scones monitor` checks for it first):
it is imported when a chart is drawn, never when this module is, so the `scones` command starts without
it. Figures are built on `matplotlib.figure.Figure` with the Agg canvas; pyplot and its global state are
never used.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from monitor.read import CapturedInference
from monitor.summary import UNREADABLE, format_duration

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
BELOW_THRESHOLD = "#d62728"  # answers below the threshold, wherever they are marked
LOW_SHARE_FILL = "#f4a3a3"
MUTED = "#7f7f7f"  # unreadable answers, secondary text
INK = "#333333"
GRID = "#e6e6e6"
LINE = "#b0b0b0"  # joins the confidence points in time order

WIDTH, HEIGHT, DPI = 960, 380, 100  # pixels of every chart

# Time-bin widths, in seconds: 1 s up to 4 weeks; a chart takes the smallest giving at most 12 bins.
_BIN_STEPS: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800)
_BIN_STEPS += (21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)
_MOST_BINS = 12


def label_colors(records: Sequence[CapturedInference]) -> dict[str, str]:
    """One palette colour per label, in label order; grey for unreadable answers."""
    names = sorted({r.label for r in records if r.label})
    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    colors[UNREADABLE] = MUTED
    return colors


# -- figure, time axis, legend, PNG ------------------------------------------------------------
def _figure(title: str, y_label: str) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title, loc="left", fontsize=13, color=INK)
    axes.set_ylabel(y_label, color=INK)
    axes.grid(True, color=GRID, linewidth=1)
    axes.set_axisbelow(True)
    axes.tick_params(colors=INK)
    return figure, axes


def _day_number(seconds: float) -> float:
    """A POSIX time as matplotlib's date number (days since its epoch)."""
    from matplotlib.dates import date2num

    return float(date2num(datetime.fromtimestamp(seconds, UTC)))


def _time_axis(axes: Axes, start: float, end: float, pad: float = 0.0) -> None:
    """x from start to end (POSIX seconds), UTC tick labels, the date(s) in the axis label.

    One instant gets a second either side; `pad` widens the axis by that share at both ends so the first
    and last points do not sit on the frame (bars fill their bins and need none). Ticks fall on whole
    seconds at least.
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, DateLocator, SecondLocator

    if end - start < 1.0:
        start, end = start - 1.0, end + 1.0
    start, end = start - (end - start) * pad, end + (end - start) * pad
    locator: DateLocator = (
        SecondLocator(tz=UTC) if end - start < 10.0 else AutoDateLocator(tz=UTC, minticks=3, maxticks=9)
    )
    formatter = ConciseDateFormatter(
        locator,
        tz=UTC,
        formats=["%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M", "%H:%M:%S"],
        zero_formats=["", "%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M:%S"],
        show_offset=False,
    )
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(formatter)
    axes.set_xlim(_day_number(start), _day_number(end))
    first, last = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    dates = f"{first:%Y-%m-%d}" if first.date() == last.date() else f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
    axes.set_xlabel(f"time (UTC), {dates}", color=INK)


def _legend(axes: Axes, handles: Sequence[Artist]) -> None:
    """On the title line, right-aligned, one row."""
    if handles:
        axes.legend(
            handles=list(handles),
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncols=len(handles),
            frameon=False,
            borderaxespad=0.3,
            handlelength=1.6,
            columnspacing=1.2,
        )


def _box(color: str, name: str, edge: str | None = None) -> Patch:
    from matplotlib.patches import Patch

    return Patch(facecolor=color, edgecolor=edge or color, label=name)


def _dash(color: str, name: str) -> Line2D:
    from matplotlib.lines import Line2D

    return Line2D([], [], color=color, linestyle="--", linewidth=1.5, label=name)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _span(records: Sequence[CapturedInference]) -> tuple[float, float]:
    times = [r.time.timestamp() for r in records]
    return (min(times), max(times)) if times else (0.0, 1.0)


# -- the charts --------------------------------------------------------------------------------
def confidence_chart(records: Sequence[CapturedInference], threshold: float) -> bytes:
    """Each answer's confidence at its time; the threshold dashed; below-threshold points ringed red."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FormatStrFormatter, MultipleLocator

    scored = [r for r in records if r.confidence is not None]
    values = [float(r.confidence or 0.0) for r in scored]
    lowest = min([threshold, *values])
    y_low = 0.5 if lowest >= 0.5 else math.floor(lowest * 10) / 10
    figure, axes = _figure("Confidence over time", "confidence")
    _time_axis(axes, *_span(records), pad=0.03)
    axes.set_ylim(y_low, 1.0)
    axes.yaxis.set_major_locator(MultipleLocator(0.05 if y_low >= 0.5 else 0.1))
    axes.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    times = [_day_number(r.time.timestamp()) for r in scored]
    if len(scored) > 1:
        axes.plot(times, values, color=LINE, linewidth=1, zorder=2)
    colors = label_colors(records)
    if scored:
        # Not clipped: a point at 1.0 is drawn whole over the frame.
        axes.scatter(
            times,
            values,
            s=72,
            c=[colors.get(r.label or UNREADABLE, MUTED) for r in scored],
            edgecolors=[BELOW_THRESHOLD if v < threshold else "white" for v in values],
            linewidths=1.5,
            zorder=4,
            clip_on=False,
        )
    axes.axhline(threshold, color=BELOW_THRESHOLD, linestyle="--", linewidth=1.5, zorder=3)
    names = [n for n in colors if n != UNREADABLE and any(r.label == n for r in scored)]
    ring = Line2D(
        [],
        [],
        marker="o",
        linestyle="none",
        markersize=8,
        markerfacecolor="white",
        markeredgecolor=BELOW_THRESHOLD,
        markeredgewidth=1.5,
        label="below threshold",
    )
    _legend(
        axes,
        [_box(colors[name], name) for name in names]
        + [ring, _dash(BELOW_THRESHOLD, f"threshold {threshold:.2f}")],
    )
    return _png(figure)


@dataclass
class TimeBin:
    start: float  # POSIX seconds
    counts: Counter[str]  # answers per label
    low: int  # answers below the threshold
    scored: int  # answers with a confidence


def time_bins(records: Sequence[CapturedInference], threshold: float) -> tuple[list[TimeBin], float]:
    """The records in equal time bins (at most about 12, of a round width), and that width in seconds."""
    start, end = _span(records)
    span = max(end - start, 1.0)
    step = float(next((s for s in _BIN_STEPS if span / s <= _MOST_BINS), _BIN_STEPS[-1]))
    first = math.floor(start / step) * step
    count = int((end - first) // step) + 1
    bins = [TimeBin(first + i * step, Counter(), 0, 0) for i in range(count)]
    for record in records:
        index = min(int((record.time.timestamp() - first) // step), count - 1)
        bins[index].counts[record.label or UNREADABLE] += 1
        if record.confidence is not None:
            bins[index].scored += 1
            bins[index].low += record.confidence < threshold
    return bins, step


def _bar_lefts(bins: Sequence[TimeBin], step: float) -> tuple[list[float], float]:
    """Left edges and width (in days, matplotlib's date unit) of bars filling 80 % of each bin."""
    return [_day_number(b.start + step * 0.1) for b in bins], step * 0.8 / 86400


def label_mix_chart(records: Sequence[CapturedInference], threshold: float) -> bytes:
    """Answers per time bin, stacked by label."""
    from matplotlib.ticker import MaxNLocator

    bins, step = time_bins(records, threshold)
    figure, axes = _figure(f"Label mix over time ({format_duration(step)} bins)", "answers")
    _time_axis(axes, bins[0].start, bins[-1].start + step)
    lefts, width = _bar_lefts(bins, step)
    colors = label_colors(records)
    order = [name for name in colors if any(b.counts[name] for b in bins)]
    base = [0] * len(bins)
    for name in order:
        heights = [b.counts[name] for b in bins]
        axes.bar(lefts, heights, width=width, bottom=base, align="edge", color=colors[name], zorder=2)
        base = [below + height for below, height in zip(base, heights, strict=True)]
    axes.set_ylim(0, max(max(base, default=0), 1) * 1.05)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    _legend(axes, [_box(colors[name], name) for name in order])
    return _png(figure)


def low_confidence_chart(records: Sequence[CapturedInference], threshold: float, rate: float | None) -> bytes:
    """Share of answers below the threshold per time bin, with low/scored over each bar; the overall
    rate dashed."""
    from matplotlib.ticker import MultipleLocator, PercentFormatter

    bins, step = time_bins(records, threshold)
    figure, axes = _figure(
        f"Low-confidence rate (confidence < {threshold:.2f}, {format_duration(step)} bins)",
        "share of answers",
    )
    _time_axis(axes, bins[0].start, bins[-1].start + step)
    scored = [b for b in bins if b.scored]
    lefts, width = _bar_lefts(scored, step)
    bars = axes.bar(
        lefts,
        [b.low / b.scored for b in scored],
        width=width,
        align="edge",
        color=LOW_SHARE_FILL,
        edgecolor=BELOW_THRESHOLD,
        linewidth=1,
        zorder=2,
    )
    if len(bins) <= 2 * _MOST_BINS:  # bars wide enough for their counts
        axes.bar_label(bars, labels=[f"{b.low}/{b.scored}" for b in scored], padding=2, fontsize=9, color=INK)
    axes.set_ylim(0, 1.08)  # room for a count over a full bar
    axes.yaxis.set_major_locator(MultipleLocator(0.2))
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    if rate is not None:
        axes.axhline(rate, color=INK, linestyle="--", linewidth=1.5, zorder=3)
        _legend(
            axes,
            [_box(LOW_SHARE_FILL, "below threshold", BELOW_THRESHOLD), _dash(INK, f"overall {rate:.1%}")],
        )
    return _png(figure)
