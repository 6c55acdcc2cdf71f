"""How good the classifier is on labelled images: accuracy with its 95 % interval, per-class precision
and recall, the confusion matrix, what the confidence threshold decides, and calibration (ECE and a
reliability diagram)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rich.console import Console
from rich.table import Table

from model.inference import SNIFF_CONTENT_TYPE
from model.metrics import Decided, Reliability, decided_at, reliability, wilson_interval
from scones_common.constants import DEFAULT_CONFIDENCE_THRESHOLD
from scones_common.exceptions import SconesError

# The shared CIFAR-100 bicycle/motorcycle images: CI checks the shared folder out next to the repo.
DEFAULT_DATA_DIR = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar100-bicycle-motorcycle" / "train"
)


# Where the threshold of a report came from (EvaluationReport.threshold_source).
THRESHOLD_GIVEN = "given"
THRESHOLD_CALIBRATED = "metadata.json calibration"
THRESHOLD_WORKFLOW_DEFAULT = "workflow default"

RELIABILITY_BINS = 10


class EvaluationInputError(Exception):
    """The labelled directory is missing, malformed, or holds a file that is not a readable image."""


class ProbabilityModel(Protocol):
    """What evaluation needs of a model: ImageClassifierModel, or a fake in the tests."""

    class_names: list[str]
    metadata: dict[str, Any]
    model_dir: Path

    def predict(self, body: bytes, content_type: str) -> list[float]: ...


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: str

    def relative_name(self, root: Path) -> str:
        return self.path.relative_to(root).as_posix()


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    support: int

    def to_dict(self) -> dict[str, float | int]:
        return {"precision": self.precision, "recall": self.recall, "support": self.support}


@dataclass(frozen=True)
class EvaluationReport:
    accuracy: float
    n: int
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]  # rows: true class, columns: predicted class, both in model order
    class_names: list[str] = field(default_factory=list)
    # Known only when the report was built from probabilities (build_report_from_probabilities).
    at_threshold: Decided | None = None
    threshold_source: str | None = None
    reliability: Reliability | None = None

    @property
    def correct(self) -> int:
        return sum(self.confusion[i][i] for i in range(len(self.confusion)))

    @property
    def accuracy_95(self) -> tuple[float, float]:
        """95 % Wilson interval of the accuracy."""
        return wilson_interval(self.correct, self.n)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "accuracy_95": [round(bound, 4) for bound in self.accuracy_95],
            "correct": self.correct,
            "n": self.n,
            "per_class": {name: metrics.to_dict() for name, metrics in self.per_class.items()},
            "confusion": [list(row) for row in self.confusion],
            "at_threshold": None if self.at_threshold is None else self._threshold_dict(self.at_threshold),
            "calibration": None if self.reliability is None else self.reliability.to_dict(),
        }

    def _threshold_dict(self, decided: Decided) -> dict[str, Any]:
        error_95 = wilson_interval(decided.errors, decided.decided)
        return {
            **decided.to_dict(),
            "error_rate_95": [round(bound, 4) for bound in error_95],
            "source": self.threshold_source,
        }


def list_labelled_images(root: Path, class_names: Sequence[str] | None = None) -> list[LabelledImage]:
    """Every image under root/<class>/, sorted; training and evaluation read a directory the same way.

    Without `class_names`, the sub-folders (sorted) are the classes.
    """
    if not root.is_dir():
        raise EvaluationInputError(f"{root} is not a directory")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise EvaluationInputError(f"{root} has no class sub-folders (expected one folder per class)")
    if class_names is not None:
        unknown = [p.name for p in folders if p.name not in class_names]
        if unknown:
            raise EvaluationInputError(
                f"{root} has folders {unknown} that are not classes of the model ({', '.join(class_names)})"
            )
    images: list[LabelledImage] = []
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise EvaluationInputError(f"class folder {folder} is empty")
        images.extend(LabelledImage(path, folder.name) for path in files)
    return images


def data_digest(images: Sequence[LabelledImage], root: Path) -> str:
    """sha256 over the sorted relative file names and their bytes: which data a model was trained on."""
    digest = hashlib.sha256()
    for image in sorted(images, key=lambda item: item.relative_name(root)):
        name = image.relative_name(root).encode("utf-8")
        content = image.path.read_bytes()
        digest.update(len(name).to_bytes(8, "big") + name + len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def names_digest(names: Sequence[str]) -> str:
    """sha256 of a list of relative file names, one per line, sorted."""
    return hashlib.sha256("\n".join(sorted(names)).encode("utf-8")).hexdigest()


def default_threshold(metadata: Mapping[str, Any]) -> tuple[float, str]:
    """The model's calibrated threshold (metadata "calibration": {"threshold": t}) if it has one, else
    the workflow's default confidence threshold; with where it came from.

    An uncalibrated model has no "calibration", none with a "threshold", or "threshold": null (what
    training writes when there were no cross-validation figures to fix one on).
    """
    calibration = metadata.get("calibration")
    if calibration is None:
        return DEFAULT_CONFIDENCE_THRESHOLD, THRESHOLD_WORKFLOW_DEFAULT
    if not isinstance(calibration, Mapping):
        raise EvaluationInputError(f'"calibration" in metadata.json must be an object, not {calibration!r}')
    value = calibration.get("threshold")
    if value is None:
        return DEFAULT_CONFIDENCE_THRESHOLD, THRESHOLD_WORKFLOW_DEFAULT
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise EvaluationInputError(
            f'"calibration.threshold" in metadata.json must be a number in [0, 1], not {value!r}'
        )
    return float(value), THRESHOLD_CALIBRATED


def evaluate_directory(
    path: Path, model: ProbabilityModel, threshold: float | None = None
) -> EvaluationReport:
    """Evaluate on DIR/<class name>/<image files>; folder names must be classes of the model.

    `threshold` None: the model's calibrated threshold, else the workflow's default (default_threshold).
    """
    return evaluate_images(list_labelled_images(Path(path), model.class_names), model, threshold)


def evaluate_validation_split(
    model: ProbabilityModel, data_dir: Path = DEFAULT_DATA_DIR, threshold: float | None = None
) -> EvaluationReport:
    """Re-evaluate on the held-out files recorded in the model's metadata, read from `data_dir`."""
    validation = model.metadata.get("validation")
    files = validation.get("files") if isinstance(validation, Mapping) else None
    if not files or not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        raise EvaluationInputError(
            f"the metadata.json of {model.model_dir} records no validation split (validation.files); "
            "evaluate a directory of class folders instead"
        )
    names: list[str] = files
    if not Path(data_dir).is_dir():
        raise EvaluationInputError(f"training data directory {data_dir} does not exist")
    images = [LabelledImage(Path(data_dir) / name, name.split("/", 1)[0]) for name in names]
    missing = [image.relative_name(Path(data_dir)) for image in images if not image.path.is_file()]
    if missing:
        raise EvaluationInputError(
            f"{len(missing)} validation files are missing from {data_dir}, e.g. {missing[0]}"
        )
    return evaluate_images(images, model, threshold)


def evaluate_images(
    images: Sequence[LabelledImage], model: ProbabilityModel, threshold: float | None = None
) -> EvaluationReport:
    if threshold is None:
        threshold, source = default_threshold(model.metadata)
    else:
        source = THRESHOLD_GIVEN
    if not 0.0 <= threshold <= 1.0:
        raise EvaluationInputError(f"the threshold must be in [0, 1], not {threshold}")
    if not images:
        raise EvaluationInputError("there are no images to evaluate")
    class_index = {name: i for i, name in enumerate(model.class_names)}
    unknown = sorted({image.label for image in images} - class_index.keys())
    if unknown:
        raise EvaluationInputError(
            f"labels {unknown} are not classes of the model ({', '.join(model.class_names)})"
        )
    probabilities = _predict_files(images, model)
    truths = [class_index[image.label] for image in images]
    return build_report_from_probabilities(truths, probabilities, model.class_names, threshold, source)


def _predict_files(images: Sequence[LabelledImage], model: ProbabilityModel) -> np.ndarray:
    """N x classes probabilities; any format the workflow accepts (the content type says "sniff it")."""
    rows: list[list[float]] = []
    for image in images:
        try:
            # One by one (not predict_batch) so a bad file is named in the error.
            row = model.predict(image.path.read_bytes(), SNIFF_CONTENT_TYPE)
        except (SconesError, OSError) as exc:
            raise EvaluationInputError(f"{image.path}: {exc}") from exc
        if len(row) != len(model.class_names):
            raise EvaluationInputError(
                f"{image.path}: the model answered {len(row)} probabilities "
                f"for {len(model.class_names)} classes"
            )
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)


def build_report(
    truths: Sequence[int], predictions: Sequence[int], class_names: Sequence[str]
) -> EvaluationReport:
    """Metrics from true and predicted class indices; precision of a never-predicted class is 0."""
    k = len(class_names)
    confusion = [[0] * k for _ in range(k)]
    for truth, prediction in zip(truths, predictions, strict=True):
        confusion[truth][prediction] += 1
    n = len(truths)
    per_class: dict[str, ClassMetrics] = {}
    for i, name in enumerate(class_names):
        support = sum(confusion[i])
        predicted = sum(row[i] for row in confusion)
        hits = confusion[i][i]
        per_class[name] = ClassMetrics(
            precision=hits / predicted if predicted else 0.0,
            recall=hits / support if support else 0.0,
            support=support,
        )
    accuracy = sum(confusion[i][i] for i in range(k)) / n if n else 0.0
    return EvaluationReport(accuracy, n, per_class, confusion, list(class_names))


def build_report_from_probabilities(
    truths: Sequence[int],
    probabilities: np.ndarray,
    class_names: Sequence[str],
    threshold: float,
    threshold_source: str = THRESHOLD_GIVEN,
    n_bins: int = RELIABILITY_BINS,
) -> EvaluationReport:
    """build_report on the top class, plus what `threshold` decides and the reliability bins."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(truths), len(class_names)):
        raise EvaluationInputError(
            f"the model answered {probabilities.shape[-1] if probabilities.ndim == 2 else '?'} "
            f"probabilities per image for {len(class_names)} classes"
        )
    labels = np.asarray(truths, dtype=np.int64)
    # argmax takes the first of equal probabilities, as the classify step does.
    report = build_report(truths, probabilities.argmax(axis=1).tolist(), class_names)
    return replace(
        report,
        at_threshold=decided_at(probabilities, labels, threshold),
        threshold_source=threshold_source,
        reliability=reliability(probabilities, labels, n_bins),
    )


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


def write_confusion_png(report: EvaluationReport, path: Path, cell: int = 96) -> Path:
    """Draw the confusion matrix as a PNG with Pillow only; darker cells hold more images."""
    from PIL import Image, ImageDraw

    names = list(report.per_class)
    k = len(names)
    margin = 120
    size = (margin + cell * k + 10, margin + cell * k + 10)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    peak = max((count for row in report.confusion for count in row), default=0) or 1
    for i, row in enumerate(report.confusion):
        for j, count in enumerate(row):
            shade = int(255 - 200 * count / peak)
            box = (margin + j * cell, margin + i * cell, margin + (j + 1) * cell, margin + (i + 1) * cell)
            draw.rectangle(box, fill=(shade, shade, 255), outline="black")
            ink = "white" if shade < 128 else "black"
            draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), str(count), fill=ink, anchor="mm")
    for index, name in enumerate(names):
        center = margin + index * cell + cell / 2
        draw.text((center, margin - 10), name, fill="black", anchor="md")
        draw.text((margin - 10, center), name, fill="black", anchor="rm")
    low, high = report.accuracy_95
    draw.text(
        (10, 10), f"accuracy {report.accuracy:.4f} (n={report.n}), 95% CI {low:.4f}-{high:.4f}", fill="black"
    )
    draw.text((10, 30), "rows: true, columns: predicted", fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


BAR_COLOUR = (110, 140, 230)
GAP_COLOUR = (220, 40, 40)
GRID_COLOUR = (225, 225, 225)
DIAGONAL_COLOUR = (90, 90, 90)


@dataclass(frozen=True)
class ReliabilityLayout:
    """Where write_reliability_png puts things: confidence [low, 1] across, accuracy [0, 1] up."""

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

    def x(self, confidence: float) -> float:
        return self.margin_left + self.plot * (confidence - self.low) / (1.0 - self.low)

    def y(self, accuracy: float) -> float:
        return self.margin_top + self.plot * (1.0 - accuracy)


def write_reliability_png(report: EvaluationReport, path: Path) -> Path:
    """Draw the reliability diagram as a PNG with Pillow only: per confidence bin, a bar to its accuracy,
    a red frame to its mean confidence (the gap), its count; the diagonal; the ECE in the title."""
    from PIL import Image, ImageDraw

    if report.reliability is None:
        raise ValueError("the report has no reliability bins (build it from probabilities)")
    figures = report.reliability
    layout = ReliabilityLayout(figures.bins[0].low)
    image = Image.new("RGB", layout.size, "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = layout.plot_box
    for step in range(11):  # accuracy grid and ticks every 0.1
        y = layout.y(step / 10)
        draw.line((left, y, right, y), fill=GRID_COLOUR)
        draw.text((left - 6, y), f"{step / 10:.1f}", fill="black", anchor="rm")
    edges = [item.low for item in figures.bins] + [figures.bins[-1].high]
    for edge in edges:
        x = layout.x(edge)
        draw.line((x, top, x, bottom), fill=GRID_COLOUR)
        draw.text((x, bottom + 6), f"{edge:.2f}", fill="black", anchor="mt")
    for item in figures.bins:
        x0, x1 = layout.x(item.low) + 2, layout.x(item.high) - 2
        centre = (x0 + x1) / 2
        if item.n:
            draw.rectangle((x0, layout.y(item.accuracy), x1, bottom), fill=BAR_COLOUR, outline="black")
            confidence_y, accuracy_y = layout.y(item.mean_confidence), layout.y(item.accuracy)
            draw.rectangle(
                (x0 + 3, min(confidence_y, accuracy_y), x1 - 3, max(confidence_y, accuracy_y)),
                outline=GAP_COLOUR,
                width=2,
            )
        label_y = min(layout.y(item.accuracy), layout.y(item.mean_confidence)) if item.n else bottom
        draw.text((centre, label_y - 4), str(item.n), fill="black", anchor="md")
    # Perfect calibration: accuracy equal to confidence, from the lowest possible top probability.
    draw.line((layout.x(edges[0]), layout.y(edges[0]), right, layout.y(1.0)), fill=DIAGONAL_COLOUR, width=2)
    draw.rectangle(layout.plot_box, outline="black")
    draw.text(
        (layout.size[0] / 2, 10),
        f"Reliability: ECE {figures.ece:.4f}  (n={figures.n}, {len(figures.bins)} bins)",
        fill="black",
        anchor="mt",
    )
    draw.text(
        (layout.size[0] / 2, 28),
        "bars: accuracy per bin (count above); red: gap to mean confidence; line: perfect calibration",
        fill="black",
        anchor="mt",
    )
    draw.text(((left + right) / 2, bottom + 24), "top-class confidence", fill="black", anchor="mt")
    draw.text((10, top - 14), "accuracy", fill="black", anchor="lm")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
