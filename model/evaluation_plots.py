"""The figures of an evaluation, drawn with matplotlib as PNG files: the confusion matrix and the
reliability diagram.

matplotlib is an optional extra (`pip install -e '.[monitor]'`; `scones evaluate` checks for it before
evaluating): it is imported when a figure is drawn, never when this module is, so the `scones` command
loads without it; `model.evaluate`, which model/train.py imports inside the SageMaker container, never
imports this module. Figures are built on `matplotlib.figure.Figure` with the Agg canvas; pyplot and
its global state are never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from model.evaluate import EvaluationReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100

BAR_COLOUR = (110, 140, 230)
GAP_COLOUR = (220, 40, 40)
GRID_COLOUR = (225, 225, 225)
DIAGONAL_COLOUR = (90, 90, 90)


def _rgb(colour: tuple[int, int, int]) -> tuple[float, float, float]:
    red, green, blue = colour
    return (red / 255, green / 255, blue / 255)


def _figure(width: float, height: float, *, constrained: bool) -> Figure:
    """A figure of width × height pixels on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(
        figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained" if constrained else None
    )
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def write_confusion_png(report: EvaluationReport, path: Path, cell: int = 96) -> Path:
    """The confusion matrix as a PNG, `cell` pixels a class; darker cells hold more images."""
    names = list(report.per_class)
    k = len(names)
    side = cell * k
    figure = _figure(max(side + 160, 420), side + 170, constrained=True)
    axes = figure.add_subplot()
    peak = max((count for row in report.confusion for count in row), default=0) or 1
    axes.imshow(report.confusion, cmap="Blues", vmin=0, vmax=peak)
    for i, row in enumerate(report.confusion):
        for j, count in enumerate(row):
            ink = "white" if count > peak / 2 else "black"
            axes.text(j, i, str(count), ha="center", va="center", color=ink, fontsize=12)
    axes.set_xticks(range(k), names)
    axes.set_yticks(range(k), names)
    axes.xaxis.set_ticks_position("top")
    axes.xaxis.set_label_position("top")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    low, high = report.accuracy_95
    figure.suptitle(
        f"accuracy {report.accuracy:.4f} (n={report.n}), 95% CI {low:.4f}-{high:.4f}", fontsize=10
    )
    return _save(figure, path)


@dataclass(frozen=True)
class ReliabilityLayout:
    """Where write_reliability_png puts things, in pixels from the top left of the image: the plot is a
    square with confidence [low, 1] across and accuracy [0, 1] up."""

    low: float
    plot: int = 400  # the plot's side, in pixels
    margin_left: int = 60
    margin_top: int = 76
    margin_right: int = 30
    margin_bottom: int = 50

    @property
    def size(self) -> tuple[int, int]:
        return (
            self.margin_left + self.plot + self.margin_right,
            self.margin_top + self.plot + self.margin_bottom,
        )

    @property
    def plot_box(self) -> tuple[int, int, int, int]:
        return (self.margin_left, self.margin_top, self.margin_left + self.plot, self.margin_top + self.plot)

    @property
    def axes_rect(self) -> tuple[float, float, float, float]:
        """The plot as matplotlib places axes: (left, bottom, width, height) in figure fractions."""
        width, height = self.size
        return (
            self.margin_left / width,
            self.margin_bottom / height,
            self.plot / width,
            self.plot / height,
        )

    def x(self, confidence: float) -> float:
        return self.margin_left + self.plot * (confidence - self.low) / (1.0 - self.low)

    def y(self, accuracy: float) -> float:
        return self.margin_top + self.plot * (1.0 - accuracy)


def write_reliability_png(report: EvaluationReport, path: Path) -> Path:
    """The reliability diagram as a PNG: per confidence bin, a bar to its accuracy, a red frame to its
    mean confidence (the gap), its count; the diagonal; the ECE in the title."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, MultipleLocator

    if report.reliability is None:
        raise ValueError("the report has no reliability bins (build it from probabilities)")
    figures = report.reliability
    layout = ReliabilityLayout(figures.bins[0].low)
    figure = _figure(*layout.size, constrained=False)
    axes = figure.add_axes(layout.axes_rect)
    axes.set_xlim(layout.low, 1.0)
    axes.set_ylim(0.0, 1.0)
    edges = [item.low for item in figures.bins] + [figures.bins[-1].high]
    axes.xaxis.set_major_locator(FixedLocator(edges))
    axes.xaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    axes.yaxis.set_major_locator(MultipleLocator(0.1))
    axes.yaxis.set_major_formatter(FormatStrFormatter("%.1f"))
    axes.tick_params(labelsize=8)
    axes.grid(True, color=_rgb(GRID_COLOUR), linewidth=1)
    axes.set_axisbelow(True)
    for item in figures.bins:
        width = item.high - item.low
        left = item.low + 0.05 * width  # a gap of a few pixels between neighbouring bars
        top = 0.0
        if item.n:
            axes.bar(
                left,
                item.accuracy,
                width=0.9 * width,
                align="edge",
                color=_rgb(BAR_COLOUR),
                edgecolor="black",
                linewidth=1,
                zorder=2,
            )
            axes.add_patch(
                Rectangle(
                    (item.low + 0.15 * width, min(item.mean_confidence, item.accuracy)),
                    0.7 * width,
                    abs(item.accuracy - item.mean_confidence),
                    fill=False,
                    edgecolor=_rgb(GAP_COLOUR),
                    linewidth=1.5,
                    zorder=3,
                    clip_on=False,
                )
            )
            top = max(item.accuracy, item.mean_confidence)
        axes.annotate(
            str(item.n),
            (item.low + width / 2, top),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            annotation_clip=False,
        )
    # Perfect calibration: accuracy equal to confidence, from the lowest possible top probability.
    axes.plot([edges[0], 1.0], [edges[0], 1.0], color=_rgb(DIAGONAL_COLOUR), linewidth=1.5, zorder=4)
    axes.set_xlabel("top-class confidence")
    axes.set_ylabel("accuracy")
    width, height = layout.size
    figure.text(
        0.5,
        1 - 8 / height,
        f"Reliability: ECE {figures.ece:.4f}  (n={figures.n}, {len(figures.bins)} bins)",
        ha="center",
        va="top",
        fontsize=11,
    )
    axes.legend(
        handles=[
            Patch(facecolor=_rgb(BAR_COLOUR), edgecolor="black", label="accuracy (n above)"),
            Patch(facecolor="none", edgecolor=_rgb(GAP_COLOUR), label="gap to mean confidence"),
            Line2D([], [], color=_rgb(DIAGONAL_COLOUR), linewidth=1.5, label="perfect calibration"),
        ],
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0 + 18 / layout.plot),
        ncols=3,
        frameon=False,
        fontsize=8,
        handlelength=1.2,
        handletextpad=0.5,
        columnspacing=0.9,
    )
    return _save(figure, path)
