"""`scones evaluate`: the classifier's figures on a folder of labelled images, and how they print."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from harness.cli.errors import one_line_errors
from harness.errors import require_extra
from model.evaluate import (
    DEFAULT_DATA_DIR,
    EvaluationReport,
    evaluate_directory,
    evaluate_validation_split,
)
from model.evaluation_plots import write_confusion_png, write_reliability_png
from model.inference import DEFAULT_MODEL_DIR, ImageClassifierModel
from model.metrics import Decided, Reliability, wilson_interval
from scones_common.constants import DEFAULT_CONFIDENCE_THRESHOLD

_PATH = click.Path(path_type=Path)


@click.command("evaluate")
@click.argument("directory", required=False, type=_PATH)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object: accuracy, accuracy_95, correct, n, per_class, confusion, at_threshold, "
    "calibration.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Confidence threshold for the share decided and the error rate among them [default: the "
    "model's calibration.threshold in metadata.json if it has one, else the workflow's default "
    f"ConfidenceThreshold, {DEFAULT_CONFIDENCE_THRESHOLD}].",
)
@click.option("--confusion-png", type=_PATH, help="Also draw the confusion matrix to this PNG file.")
@click.option(
    "--reliability-png", type=_PATH, help="Also draw the reliability diagram (calibration) to this PNG file."
)
@click.option(
    "--plots-dir",
    type=_PATH,
    help="Draw both figures into this directory as confusion.png and reliability.png.",
)
@click.option(
    "--model-dir", type=_PATH, default=None, help=f"Model artifacts [default: {DEFAULT_MODEL_DIR}]."
)
@click.option(
    "--validation-split",
    is_flag=True,
    help="Evaluate only the held-out files recorded in the model's metadata; DIRECTORY is then the "
    f"training data root [default: {DEFAULT_DATA_DIR}].",
)
@one_line_errors
def evaluate(
    directory: Path | None,
    as_json: bool,
    threshold: float | None,
    confusion_png: Path | None,
    reliability_png: Path | None,
    plots_dir: Path | None,
    model_dir: Path | None,
    validation_split: bool,
) -> None:
    """Evaluate the classifier on DIRECTORY/<class name>/<images> (any image format the workflow takes):
    accuracy with its 95 % interval, per-class precision and recall, the confusion matrix, the share
    decided at the threshold and the error rate among them, and calibration (ECE, reliability bins)."""
    if directory is None and not validation_split:
        raise click.UsageError("give a DIRECTORY of class folders, or --validation-split")
    figures: list[tuple[str, Callable[[EvaluationReport, Path], Path], Path]] = []
    if confusion_png is not None:
        figures.append(("confusion matrix", write_confusion_png, confusion_png))
    if reliability_png is not None:
        figures.append(("reliability diagram", write_reliability_png, reliability_png))
    if plots_dir is not None:
        figures.append(("confusion matrix", write_confusion_png, plots_dir / "confusion.png"))
        figures.append(("reliability diagram", write_reliability_png, plots_dir / "reliability.png"))
    if figures:
        require_extra("monitor", "the figures need matplotlib", "matplotlib")
    model = ImageClassifierModel.load(model_dir)
    if validation_split:
        report = evaluate_validation_split(model, directory or DEFAULT_DATA_DIR, threshold)
    else:
        assert directory is not None
        report = evaluate_directory(directory, model, threshold)
    for _, write, path in figures:
        write(report, path)
    _print_report(report, as_json, "validation split" if validation_split else str(directory))
    if not as_json:
        for name, _, path in figures:
            click.echo(f"{name} written to {path}")


def _print_report(report: EvaluationReport, as_json: bool, title: str) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        render_report(report, Console(), title=f"Evaluation on {title}")


def render_report(report: EvaluationReport, console: Console, title: str = "Evaluation") -> None:
    """Accuracy line, per-class and confusion tables, what the threshold decides, and calibration."""
    low, high = report.accuracy_95
    console.print(
        f"[bold]{title}[/bold]: accuracy [bold]{report.accuracy:.4f}[/bold] ({report.correct}/{report.n}), "
        f"95 % CI {low:.4f}–{high:.4f}"
    )
    metrics = Table(title="Per class")
    for column in ("class", "precision", "recall", "support"):
        metrics.add_column(column, justify="left" if column == "class" else "right")
    for name, item in report.per_class.items():
        metrics.add_row(name, f"{item.precision:.4f}", f"{item.recall:.4f}", str(item.support))
    console.print(metrics)
    names = list(report.per_class)
    confusion = Table(title="Confusion (rows: true, columns: predicted)")
    confusion.add_column("true \\ predicted")
    for name in names:
        confusion.add_column(name, justify="right")
    for name, row in zip(names, report.confusion, strict=True):
        confusion.add_row(name, *(str(count) for count in row))
    console.print(confusion)
    if report.at_threshold is not None:
        console.print(threshold_line(report.at_threshold, report.threshold_source))
    if report.reliability is not None:
        console.print(reliability_table(report.reliability))


def threshold_line(decided: Decided, source: str | None) -> str:
    """Two lines: how many the threshold decides, and how often those are wrong (95 % CI)."""
    where = f" ({source})" if source else ""
    first = (
        f"At threshold [bold]{decided.threshold:.4g}[/bold]{where}: {decided.decided}/{decided.n} decided "
        f"([bold]{decided.share:.1%}[/bold]), {decided.n - decided.decided} to review"
    )
    if not decided.decided:
        return first + "\n  error rate among the decided: none decided"
    low, high = wilson_interval(decided.errors, decided.decided)
    return first + (
        f"\n  error rate among the decided: {decided.errors}/{decided.decided} = "
        f"[bold]{decided.error_rate:.2%}[/bold] (95 % CI {low:.2%}–{high:.2%})"
    )


def reliability_table(figures: Reliability) -> Table:
    table = Table(title=f"Calibration: expected calibration error (ECE) {figures.ece:.4f}")
    for column in ("top-class confidence", "n", "mean confidence", "accuracy", "gap"):
        table.add_column(column, justify="left" if column.startswith("top") else "right")
    for index, item in enumerate(figures.bins):
        closing = "]" if index == len(figures.bins) - 1 else ")"
        span = f"[{item.low:.3f}, {item.high:.3f}{closing}"
        if not item.n:
            table.add_row(span, "0", "-", "-", "-")
            continue
        table.add_row(
            span,
            str(item.n),
            f"{item.mean_confidence:.4f}",
            f"{item.accuracy:.4f}",
            f"{item.accuracy - item.mean_confidence:+.4f}",
        )
    return table
