"""Accuracy, per-class precision/recall and the confusion matrix of the classifier on labelled images."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from model.inference import ImageClassifierModel
from scones_common.exceptions import SconesError

# The shared CIFAR-100 bicycle/motorcycle images: CI checks the shared folder out next to the repo.
DEFAULT_DATA_DIR = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar100-bicycle-motorcycle" / "train"
)


class EvaluationInputError(Exception):
    """The labelled directory is missing, malformed, or holds a file that is not a readable image."""


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "n": self.n,
            "per_class": {name: metrics.to_dict() for name, metrics in self.per_class.items()},
            "confusion": [list(row) for row in self.confusion],
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


def evaluate_directory(path: Path, model: ImageClassifierModel) -> EvaluationReport:
    """Evaluate on DIR/<class name>/<image files>; folder names must be classes of the model."""
    return evaluate_images(list_labelled_images(Path(path), model.class_names), model)


def evaluate_validation_split(
    model: ImageClassifierModel, data_dir: Path = DEFAULT_DATA_DIR
) -> EvaluationReport:
    """Re-evaluate on the held-out files recorded in the model's metadata, read from `data_dir`."""
    validation = model.metadata.get("validation") or {}
    names: list[str] = list(validation.get("files") or [])
    if not names:
        raise EvaluationInputError(f"the metadata of {model.model_dir} records no validation files")
    if not Path(data_dir).is_dir():
        raise EvaluationInputError(f"training data directory {data_dir} does not exist")
    images = [LabelledImage(Path(data_dir) / name, name.split("/", 1)[0]) for name in names]
    missing = [image.relative_name(Path(data_dir)) for image in images if not image.path.is_file()]
    if missing:
        raise EvaluationInputError(
            f"{len(missing)} validation files are missing from {data_dir}, e.g. {missing[0]}"
        )
    return evaluate_images(images, model)


def evaluate_images(images: Sequence[LabelledImage], model: ImageClassifierModel) -> EvaluationReport:
    if not images:
        raise EvaluationInputError("there are no images to evaluate")
    class_index = {name: i for i, name in enumerate(model.class_names)}
    unknown = sorted({image.label for image in images} - class_index.keys())
    if unknown:
        raise EvaluationInputError(
            f"labels {unknown} are not classes of the model ({', '.join(model.class_names)})"
        )
    predictions = _predict_files(images, model)
    truths = [class_index[image.label] for image in images]
    return build_report(truths, predictions, model.class_names)


def _predict_files(images: Sequence[LabelledImage], model: ImageClassifierModel) -> list[int]:
    predicted: list[int] = []
    for image in images:
        try:
            # One by one (not predict_batch) so a bad file is named in the error.
            probabilities = model.predict(image.path.read_bytes(), "application/x-image")
        except (SconesError, OSError) as exc:
            raise EvaluationInputError(f"{image.path}: {exc}") from exc
        predicted.append(max(range(len(probabilities)), key=probabilities.__getitem__))
    return predicted


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


def render_report(report: EvaluationReport, console: Console, title: str = "Evaluation") -> None:
    """Accuracy line, a per-class table and the confusion matrix, for the terminal."""
    correct = sum(report.confusion[i][i] for i in range(len(report.confusion)))
    console.print(f"[bold]{title}[/bold]: accuracy [bold]{report.accuracy:.4f}[/bold] ({correct}/{report.n})")
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
    draw.text((10, 10), f"accuracy {report.accuracy:.4f} (n={report.n})", fill="black")
    draw.text((10, 30), "rows: true, columns: predicted", fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
