"""`scones evaluate` and `scones train`: click commands the harness registers on the `scones` group."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console

from model.evaluate import (
    DEFAULT_DATA_DIR,
    EvaluationInputError,
    EvaluationReport,
    evaluate_directory,
    evaluate_validation_split,
    render_report,
    write_confusion_png,
    write_reliability_png,
)
from model.inference import DEFAULT_MODEL_DIR, ImageClassifierModel, ModelArtifactError
from scones_common.constants import DEFAULT_CONFIDENCE_THRESHOLD


class CommandError(click.ClickException):
    """One line on stderr ("Error: ..."), exit code 2, no traceback."""

    exit_code = 2


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
    try:
        model = ImageClassifierModel.load(model_dir)
        if validation_split:
            report = evaluate_validation_split(model, directory or DEFAULT_DATA_DIR, threshold)
        else:
            assert directory is not None
            report = evaluate_directory(directory, model, threshold)
        for _, write, path in figures:
            write(report, path)
    except (EvaluationInputError, ModelArtifactError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    _print_report(report, as_json, "validation split" if validation_split else str(directory))
    if not as_json:
        for name, _, path in figures:
            click.echo(f"{name} written to {path}")


def _print_report(report: EvaluationReport, as_json: bool, title: str) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        render_report(report, Console(), title=f"Evaluation on {title}")


@click.command("train")
@click.option(
    "--data-dir", type=_PATH, default=None, help=f"One folder per class [default: {DEFAULT_DATA_DIR}]."
)
@click.option(
    "--output-dir", type=_PATH, default=None, help=f"Where to write the model [default: {DEFAULT_MODEL_DIR}]."
)
@click.option(
    "--recipe",
    default=None,
    help="A recipe of model/training/recipes.py [default: the shipped model's]; see model/README.md.",
)
@click.option("--epochs", type=int, default=None, help="Override the recipe's.")
@click.option("--lr", type=float, default=None, help="Peak learning rate of the one-cycle schedule.")
@click.option("--batch-size", type=int, default=None)
@click.option("--resolution", type=int, default=None, help="Override the recipe's upsampled input side.")
@click.option("--seed", type=int, default=None)
@click.option(
    "--val-fraction", type=float, default=None, help="Held-out fraction of each class [default: 0, none]."
)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def train(no_progress: bool, **options: object) -> None:
    """Fine-tune the model on a CPU and write classifier.onnx and metadata.json (needs the [train] extra)."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("onnx") is None:
        raise CommandError("training needs PyTorch and ONNX: pip install -e '.[train]'")
    from model import train as trainer

    argv = [f"--{name.replace('_', '-')}={value}" for name, value in options.items() if value is not None]
    if no_progress:
        argv.append("--no-progress")
    try:
        trainer.main(argv)
    except (EvaluationInputError, ModelArtifactError, OSError) as exc:
        raise CommandError(str(exc)) from exc


model_commands: list[click.Command] = [evaluate, train]
