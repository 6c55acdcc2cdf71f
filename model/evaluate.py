"""How good the classifier is on labelled images: accuracy with its 95 % interval, per-class precision
and recall, the confusion matrix, what the confidence threshold decides, and calibration (ECE and the
reliability bins). model/evaluation_plots.py draws the confusion matrix and the reliability diagram."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

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
