"""Evaluation of the classifier on labelled folders, its report, and the `scones evaluate` command."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from rich.console import Console

from harness.cli import COMMANDS
from harness.cli.evaluate import evaluate, render_report
from harness.cli.train import train
from harness.local.template import PROJECT_ROOT, load_template
from model.evaluate import (
    DEFAULT_DATA_DIR,
    THRESHOLD_CALIBRATED,
    THRESHOLD_GIVEN,
    THRESHOLD_WORKFLOW_DEFAULT,
    EvaluationInputError,
    build_report,
    build_report_from_probabilities,
    default_threshold,
    evaluate_directory,
    evaluate_validation_split,
    list_labelled_images,
)
from model.evaluation_plots import BAR_COLOUR, ReliabilityLayout, write_confusion_png, write_reliability_png
from model.inference import DEFAULT_MODEL_DIR, ImageClassifierModel
from model.metrics import reliability, wilson_interval
from scones_common.constants import DEFAULT_CONFIDENCE_THRESHOLD
from scones_common.formats import CONTENT_TYPES
from scones_common.settings import FilterSettings
from tests.helpers import SHARED_DATA, packages_imported_by

CIFAR_TRAIN = SHARED_DATA / "cifar100-bicycle-motorcycle" / "train"
needs_shared_data = pytest.mark.skipif(
    not CIFAR_TRAIN.is_dir(), reason=f"shared CIFAR-100 sample data not checked out at {CIFAR_TRAIN}"
)


@pytest.fixture(scope="module")
def model() -> ImageClassifierModel:
    return ImageClassifierModel.load()


def synthetic_png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def labelled_dir(tmp_path: Path) -> Path:
    """Three images per class: real CIFAR ones when the shared data is there, synthetic otherwise."""
    root = tmp_path / "labelled"
    for index, label in enumerate(["bicycle", "motorcycle"]):
        (root / label).mkdir(parents=True)
        real = sorted((CIFAR_TRAIN / label).glob("*.png"))[:3] if CIFAR_TRAIN.is_dir() else []
        for i in range(3):
            target = root / label / f"{label}_{i}.png"
            if real:
                shutil.copyfile(real[i], target)
            else:
                target.write_bytes(synthetic_png(10 * index + i))
    return root


@dataclass
class FakeModel:
    """Answers [p, 1 - p] for a file holding the text of p: the test decides every probability."""

    metadata: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=lambda: ["bicycle", "motorcycle"])
    model_dir: Path = Path("/fake-model")

    def predict(self, body: bytes, content_type: str) -> list[float]:
        p_bicycle = float(body.decode())
        return [p_bicycle, 1.0 - p_bicycle]


# P(bicycle) per image. Bicycles: right at .99, .97, .93 (exactly the threshold), .60; wrong at .20
# (motorcycle, confidence .80). Motorcycles: right at .01 and .05 (confidence .99, .95) and .30 (.70);
# wrong at .94 and at .50 (a tie goes to the first class, bicycle, as in the classify step).
ANSWERS = {"bicycle": [0.99, 0.97, 0.93, 0.60, 0.20], "motorcycle": [0.01, 0.05, 0.94, 0.50, 0.30]}


@pytest.fixture
def answers_dir(tmp_path: Path) -> Path:
    root = tmp_path / "answers"
    for label, values in ANSWERS.items():
        (root / label).mkdir(parents=True)
        for i, value in enumerate(values):
            (root / label / f"{i}.txt").write_text(repr(value))
    return root


REPORT_KEYS = {
    "accuracy",
    "accuracy_95",
    "correct",
    "n",
    "per_class",
    "confusion",
    "at_threshold",
    "calibration",
}


def model_dir_with(tmp_path: Path, **changes: Any) -> Path:
    """A copy of the committed model whose metadata.json has `changes` (None deletes a key)."""
    target = tmp_path / "model"
    target.mkdir()
    for source in DEFAULT_MODEL_DIR.iterdir():
        if source.suffix == ".onnx":
            (target / source.name).symlink_to(source)
    metadata = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())
    for key, value in changes.items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    (target / "metadata.json").write_text(json.dumps(metadata))
    return target


# ---------------------------------------------------------------- report arithmetic


def test_build_report_counts_precision_recall_and_confusion() -> None:
    # Given 3 bicycles (one called a motorcycle) and 2 motorcycles, both right
    report = build_report([0, 0, 0, 1, 1], [0, 0, 1, 1, 1], ["bicycle", "motorcycle"])
    # Then
    assert report.accuracy == pytest.approx(0.8)
    assert report.n == 5
    assert report.confusion == [[2, 1], [0, 2]]
    assert report.per_class["bicycle"].precision == pytest.approx(1.0)
    assert report.per_class["bicycle"].recall == pytest.approx(2 / 3)
    assert report.per_class["motorcycle"].precision == pytest.approx(2 / 3)
    assert report.per_class["motorcycle"].support == 2


def test_a_never_predicted_class_has_zero_precision() -> None:
    report = build_report([0, 1], [0, 0], ["bicycle", "motorcycle"])
    assert report.per_class["motorcycle"].precision == 0.0
    assert report.per_class["motorcycle"].recall == 0.0


def test_to_dict_has_exactly_the_documented_keys() -> None:
    report = build_report([0, 1], [0, 1], ["bicycle", "motorcycle"])
    as_dict = report.to_dict()
    # The original four keys, plus the interval and the figures that need probabilities (None here)
    assert set(as_dict) == REPORT_KEYS
    assert {"accuracy", "n", "per_class", "confusion"} <= set(as_dict)
    assert as_dict["at_threshold"] is None and as_dict["calibration"] is None
    assert set(as_dict["per_class"]["bicycle"]) == {"precision", "recall", "support"}
    json.dumps(as_dict)  # serialisable as is


# ---------------------------------------------------------------- intervals, threshold, calibration


def test_wilson_interval_of_95_out_of_100() -> None:
    # Given 95 right out of 100 / When
    low, high = wilson_interval(95, 100)
    # Then the published Wilson score interval, 0.8882-0.9785
    assert (round(low, 4), round(high, 4)) == (0.8882, 0.9785)
    # and each bound is where the score test is exactly at z: |p^ - p| = z sqrt(p (1 - p) / n)
    for bound in (low, high):
        assert abs(0.95 - bound) == pytest.approx(1.959964 * math.sqrt(bound * (1 - bound) / 100))


def test_the_report_carries_the_accuracy_interval() -> None:
    # Given 95 right of 100
    truths = [0] * 100
    report = build_report(truths, [0] * 95 + [1] * 5, ["bicycle", "motorcycle"])
    # Then
    assert report.correct == 95
    assert report.accuracy_95 == wilson_interval(95, 100)
    assert report.to_dict()["accuracy_95"] == [0.8882, 0.9785]


def test_without_a_calibration_the_threshold_is_the_workflow_default(answers_dir: Path) -> None:
    # Given a model whose metadata has no calibration / When evaluated without --threshold
    report = evaluate_directory(answers_dir, FakeModel())
    # Then the threshold is the workflow's (the filter step's) default, and the report says so
    decided = report.at_threshold
    assert decided is not None
    assert decided.threshold == DEFAULT_CONFIDENCE_THRESHOLD == FilterSettings().confidence_threshold
    assert report.threshold_source == THRESHOLD_WORKFLOW_DEFAULT
    assert report.to_dict()["at_threshold"]["source"] == THRESHOLD_WORKFLOW_DEFAULT


def test_decided_share_and_errors_at_a_threshold(answers_dir: Path) -> None:
    # Given a model whose every answer the test wrote / When evaluated at 0.93 (the course's threshold)
    report = evaluate_directory(answers_dir, FakeModel(), threshold=0.93)
    decided = report.at_threshold
    assert decided is not None
    # Then 6 of 10 are decided (.99 .97 .93 .99 .95 .94; 0.93 itself counts), one of them wrong (.94)
    assert report.accuracy == pytest.approx(0.7)
    assert report.confusion == [[4, 1], [2, 3]]
    assert (decided.n, decided.decided, decided.errors) == (10, 6, 1)
    figures = report.to_dict()["at_threshold"]
    assert figures["share_decided"] == 0.6
    assert figures["error_rate_among_decided"] == pytest.approx(0.1667)
    assert figures["error_rate_95"] == [round(bound, 4) for bound in wilson_interval(1, 6)]
    assert figures["error_rate_95"] == [0.0301, 0.5635]
    assert figures["source"] == THRESHOLD_GIVEN


def test_the_threshold_figures_are_rendered(answers_dir: Path) -> None:
    # Given the ten answers at 0.93 / When rendered for the terminal
    report = evaluate_directory(answers_dir, FakeModel(), threshold=0.93)
    console = Console(width=200, record=True)
    render_report(report, console)
    text = console.export_text()
    # Then the figures of the report, as numbers a reader can check
    assert "accuracy 0.7000 (7/10), 95 % CI 0.3968–0.8922" in text
    assert "At threshold 0.93 (given): 6/10 decided (60.0%), 4 to review" in text
    assert "error rate among the decided: 1/6 = 16.67% (95 % CI 3.01%–56.35%)" in text
    assert "expected calibration error (ECE)" in text


def test_a_given_threshold_changes_what_is_decided(answers_dir: Path) -> None:
    # When only answers at 0.96 or more are decided (.99 .97 .99)
    report = evaluate_directory(answers_dir, FakeModel(), threshold=0.96)
    # Then three are decided, none wrong, and the upper bound is the Wilson bound of 0/3
    figures = report.to_dict()["at_threshold"]
    assert (figures["decided"], figures["errors_among_decided"]) == (3, 0)
    assert figures["share_decided"] == 0.3
    assert figures["error_rate_95"] == [0.0, round(wilson_interval(0, 3)[1], 4)]
    assert figures["source"] == THRESHOLD_GIVEN
    # and at 0.5 (the least a top probability of two classes can be) every image is decided
    everything = evaluate_directory(answers_dir, FakeModel(), threshold=0.5).at_threshold
    assert everything is not None and everything.decided == 10 and everything.errors == 3


def test_a_calibrated_threshold_in_the_metadata_is_the_default(answers_dir: Path) -> None:
    model = FakeModel(metadata={"calibration": {"threshold": 0.96, "temperature": 1.3}})
    report = evaluate_directory(answers_dir, model)
    assert report.at_threshold is not None and report.at_threshold.threshold == 0.96
    assert report.at_threshold.decided == 3
    assert report.threshold_source == THRESHOLD_CALIBRATED
    # and a threshold given by the caller still wins
    assert evaluate_directory(answers_dir, model, threshold=0.93).threshold_source == THRESHOLD_GIVEN


def test_the_default_threshold_is_the_workflows() -> None:
    # The filter step's default and the stack's ConfidenceThreshold default: what `scones evaluate`
    # reports on is what the deployed workflow would decide
    parameters = load_template(PROJECT_ROOT / "template.yaml")["Parameters"]
    assert float(parameters["ConfidenceThreshold"]["Default"]) == DEFAULT_CONFIDENCE_THRESHOLD
    assert FilterSettings().confidence_threshold == DEFAULT_CONFIDENCE_THRESHOLD


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({}, (DEFAULT_CONFIDENCE_THRESHOLD, THRESHOLD_WORKFLOW_DEFAULT)),
        ({"calibration": {"temperature": 1.2}}, (DEFAULT_CONFIDENCE_THRESHOLD, THRESHOLD_WORKFLOW_DEFAULT)),
        # what training writes for a model without cross-validation figures
        (
            {"calibration": {"temperature": 1.0, "threshold": None}},
            (DEFAULT_CONFIDENCE_THRESHOLD, THRESHOLD_WORKFLOW_DEFAULT),
        ),
        ({"calibration": {"threshold": 0.955}}, (0.955, THRESHOLD_CALIBRATED)),
        ({"calibration": {"threshold": 1}}, (1.0, THRESHOLD_CALIBRATED)),
    ],
)
def test_default_threshold(metadata: dict[str, Any], expected: tuple[float, str]) -> None:
    assert default_threshold(metadata) == expected


@pytest.mark.parametrize("bad", [{"threshold": 1.5}, {"threshold": "0.9"}, {"threshold": True}, [0.9]])
def test_a_malformed_calibration_threshold_is_an_input_error(bad: object) -> None:
    with pytest.raises(EvaluationInputError, match="calibration"):
        default_threshold({"calibration": bad})


def reliability_example() -> tuple[np.ndarray, np.ndarray]:
    """Ten answers: 4 at 0.92 (3 right), 2 at 0.62 (both right), 4 at 1.0 (all right)."""
    top = [0.92] * 4 + [0.62] * 2 + [1.0] * 4
    probabilities = np.array([[p, 1.0 - p] for p in top])
    labels = np.array([0, 0, 0, 1] + [0, 0] + [0] * 4)
    return probabilities, labels


def test_expected_calibration_error_on_a_constructed_example() -> None:
    # Given / When
    probabilities, labels = reliability_example()
    figures = reliability(probabilities, labels)
    # Then ten bins of 0.05 from 0.5 to 1.0, and the answers where they belong (1.0 in the last)
    assert [(item.low, item.high) for item in figures.bins][:2] == [(0.5, 0.55), (0.55, 0.6)]
    assert figures.bins[-1].high == 1.0
    assert [item.n for item in figures.bins] == [0, 0, 2, 0, 0, 0, 0, 0, 4, 4]
    assert figures.bins[8].accuracy == 0.75 and figures.bins[8].mean_confidence == pytest.approx(0.92)
    # ECE = (4 |0.75 - 0.92| + 2 |1 - 0.62| + 4 |1 - 1|) / 10 = 0.144
    assert figures.ece == pytest.approx(0.144)
    assert figures.to_dict()["ece"] == 0.144
    assert figures.to_dict()["bins"][0] == {
        "low": 0.5,
        "high": 0.55,
        "n": 0,
        "correct": 0,
        "accuracy": None,
        "mean_confidence": None,
    }


def test_reliability_bins_take_their_lower_edge_and_the_last_its_upper() -> None:
    probabilities = np.array([[0.5, 0.5], [0.85, 0.15], [0.15, 0.85], [0.0, 1.0], [0.8499, 0.1501]])
    figures = reliability(probabilities, np.array([0, 0, 1, 1, 0]))
    assert [index for index, item in enumerate(figures.bins) for _ in range(item.n)] == [0, 6, 7, 7, 9]


def test_reliability_of_three_classes_starts_at_one_third() -> None:
    figures = reliability(np.array([[0.38, 0.31, 0.31], [0.1, 0.1, 0.8]]), np.array([0, 1]))
    assert figures.bins[0].low == pytest.approx(1 / 3)
    assert figures.bins[0].n == 1 and figures.bins[0].correct == 1
    assert figures.ece == pytest.approx((abs(1 - 0.38) + abs(0 - 0.8)) / 2)


def test_a_perfectly_calibrated_model_has_zero_ece() -> None:
    # Given answers at 0.8 that are right 8 times in 10, and at 1.0 always right
    probabilities = np.array([[0.8, 0.2]] * 10 + [[1.0, 0.0]] * 5)
    labels = np.array([0] * 8 + [1] * 2 + [0] * 5)
    assert reliability(probabilities, labels).ece == pytest.approx(0.0)


def test_report_from_probabilities_keeps_the_argmax_figures() -> None:
    probabilities, labels = reliability_example()
    report = build_report_from_probabilities(labels.tolist(), probabilities, ["bicycle", "motorcycle"], 0.93)
    plain = build_report(labels.tolist(), probabilities.argmax(1).tolist(), ["bicycle", "motorcycle"])
    assert (report.accuracy, report.confusion, report.per_class) == (
        plain.accuracy,
        plain.confusion,
        plain.per_class,
    )
    assert set(report.to_dict()) == REPORT_KEYS
    assert report.to_dict()["calibration"]["ece"] == 0.144
    assert report.at_threshold is not None and report.at_threshold.decided == 4  # the four at 1.0


def test_a_model_answering_the_wrong_number_of_probabilities_is_an_input_error(answers_dir: Path) -> None:
    model = FakeModel(class_names=["bicycle", "motorcycle", "scooter"])
    with pytest.raises(EvaluationInputError, match="answered 2 probabilities for 3 classes"):
        evaluate_directory(answers_dir, model)


def test_report_from_probabilities_of_the_wrong_width_is_an_input_error() -> None:
    with pytest.raises(EvaluationInputError, match="3 probabilities per image for 2 classes"):
        build_report_from_probabilities([0], np.array([[0.5, 0.3, 0.2]]), ["bicycle", "motorcycle"], 0.9)


# ---------------------------------------------------------------- evaluating a directory


def test_evaluate_directory_reports_on_every_image(labelled_dir: Path, model: ImageClassifierModel) -> None:
    report = evaluate_directory(labelled_dir, model)
    assert report.n == 6
    assert [report.per_class[name].support for name in model.class_names] == [3, 3]
    assert sum(map(sum, report.confusion)) == 6
    assert 0.0 <= report.accuracy <= 1.0


def test_a_directory_with_one_class_only_is_accepted(labelled_dir: Path, model: ImageClassifierModel) -> None:
    shutil.rmtree(labelled_dir / "motorcycle")
    report = evaluate_directory(labelled_dir, model)
    assert report.per_class["motorcycle"].support == 0


def test_missing_directory_is_an_input_error(tmp_path: Path, model: ImageClassifierModel) -> None:
    with pytest.raises(EvaluationInputError, match="is not a directory"):
        evaluate_directory(tmp_path / "missing", model)


def test_directory_without_class_folders_is_an_input_error(
    tmp_path: Path, model: ImageClassifierModel
) -> None:
    with pytest.raises(EvaluationInputError, match="no class sub-folders"):
        evaluate_directory(tmp_path, model)


def test_empty_class_folder_is_an_input_error(labelled_dir: Path, model: ImageClassifierModel) -> None:
    for path in (labelled_dir / "motorcycle").iterdir():
        path.unlink()
    with pytest.raises(EvaluationInputError, match="is empty"):
        evaluate_directory(labelled_dir, model)


def test_unknown_class_folder_is_an_input_error(labelled_dir: Path, model: ImageClassifierModel) -> None:
    (labelled_dir / "car").mkdir()
    (labelled_dir / "car" / "a.png").write_bytes(synthetic_png(1))
    with pytest.raises(EvaluationInputError, match=r"\['car'\] that are not classes"):
        evaluate_directory(labelled_dir, model)


def test_a_file_that_is_not_an_image_is_named_in_the_error(
    labelled_dir: Path, model: ImageClassifierModel
) -> None:
    (labelled_dir / "bicycle" / "notes.txt").write_text("not an image")
    with pytest.raises(EvaluationInputError, match=r"notes\.txt"):
        evaluate_directory(labelled_dir, model)


def test_hidden_files_and_folders_are_ignored(labelled_dir: Path) -> None:
    (labelled_dir / ".cache").mkdir()
    (labelled_dir / "bicycle" / ".DS_Store").write_bytes(b"\x00")
    assert len(list_labelled_images(labelled_dir)) == 6


def test_confusion_png_is_a_png(tmp_path: Path) -> None:
    report = build_report([0, 0, 1], [0, 1, 1], ["bicycle", "motorcycle"])
    path = write_confusion_png(report, tmp_path / "out" / "confusion.png")
    with Image.open(path) as image:
        assert image.format == "PNG"


def test_reliability_png_draws_each_bar_to_its_accuracy(tmp_path: Path) -> None:
    # Given the constructed example (bins 0.60-0.65: accuracy 1.0; 0.90-0.95: 0.75; 0.95-1.0: 1.0)
    probabilities, labels = reliability_example()
    report = build_report_from_probabilities(labels.tolist(), probabilities, ["bicycle", "motorcycle"], 0.93)
    # When
    path = write_reliability_png(report, tmp_path / "plots" / "reliability.png")
    # Then a real PNG of the layout's size
    layout = ReliabilityLayout(0.5)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert 2_000 < path.stat().st_size < 200_000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == layout.size
        pixels = image.convert("RGB")

        def at(confidence: float, accuracy: float) -> tuple[int, int, int]:
            colour = pixels.getpixel((round(layout.x(confidence)), round(layout.y(accuracy))))
            assert isinstance(colour, tuple)
            return (int(colour[0]), int(colour[1]), int(colour[2]))

        # the 0.90-0.95 bar stops at 0.75: filled just under it, white just over it (inside the gap)
        assert at(0.925, 0.72) == BAR_COLOUR
        assert at(0.925, 0.78) == (255, 255, 255)
        # the full bars reach 1.0
        assert at(0.625, 0.97) == BAR_COLOUR
        assert at(0.975, 0.97) == BAR_COLOUR
        # an empty bin has no bar
        assert at(0.725, 0.25) == (255, 255, 255)


def test_reliability_png_needs_probabilities(tmp_path: Path) -> None:
    report = build_report([0, 1], [0, 1], ["bicycle", "motorcycle"])
    with pytest.raises(ValueError, match="no reliability bins"):
        write_reliability_png(report, tmp_path / "reliability.png")


def test_every_format_the_workflow_accepts_is_evaluated(tmp_path: Path, model: ImageClassifierModel) -> None:
    # Given one image of each format the serialize step accepts, in either class folder
    root = tmp_path / "formats"
    for index, fmt in enumerate(CONTENT_TYPES):
        label = ["bicycle", "motorcycle"][index % 2]
        (root / label).mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(index).integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(root / label / f"image_{index}.{fmt.lower()}", format=fmt)
    # When / Then every one is classified and counted
    report = evaluate_directory(root, model)
    assert report.n == len(CONTENT_TYPES) == 6
    assert report.reliability is not None and report.reliability.n == 6


def test_metadata_without_a_validation_split_is_an_input_error(tmp_path: Path) -> None:
    nothing_held_out: dict[str, Any] = {
        "validation": {"accuracy": None, "n": 0, "fraction": 0.0, "files": []}
    }
    for metadata in (
        {},
        {"validation": None},
        {"validation": {"accuracy": 0.9}},
        {"validation": [1]},
        nothing_held_out,
    ):
        with pytest.raises(EvaluationInputError, match="records no validation split"):
            evaluate_validation_split(FakeModel(metadata=metadata), tmp_path)


def model_with_a_validation_split(tmp_path: Path, per_class: int = 10) -> tuple[ImageClassifierModel, float]:
    """A copy of the committed model whose metadata records a held-out split of CIFAR files, with the
    accuracy on them worked out here, image by image, through predict() (not through evaluate)."""
    files = [
        path.relative_to(CIFAR_TRAIN).as_posix()
        for label in ("bicycle", "motorcycle")
        for path in sorted((CIFAR_TRAIN / label).glob("*.png"))[:per_class]
    ]
    served = ImageClassifierModel.load()
    correct = sum(
        served.class_names[int(np.argmax(served.predict((CIFAR_TRAIN / name).read_bytes(), "image/png")))]
        == name.split("/")[0]
        for name in files
    )
    accuracy = correct / len(files)
    validation = {"n": len(files), "files": files, "accuracy": accuracy}
    return ImageClassifierModel.load(model_dir_with(tmp_path, validation=validation)), accuracy


@needs_shared_data
def test_validation_split_reproduces_the_metadata_accuracy(tmp_path: Path) -> None:
    # Given a model whose metadata records held-out files and the accuracy on them
    model, recorded = model_with_a_validation_split(tmp_path)
    # When re-evaluated through the ONNX server
    report = evaluate_validation_split(model, CIFAR_TRAIN)
    # Then the figure in metadata.json is exactly reproduced
    assert report.n == model.metadata["validation"]["n"] == 20
    assert report.accuracy == pytest.approx(recorded)


@needs_shared_data
def test_validation_split_from_a_missing_data_dir_is_an_input_error(tmp_path: Path) -> None:
    model, _ = model_with_a_validation_split(tmp_path)
    with pytest.raises(EvaluationInputError, match="does not exist"):
        evaluate_validation_split(model, tmp_path / "missing")


def test_evaluate_imports_neither_pydantic_nor_powertools() -> None:
    # model/train.py imports model.evaluate inside the SageMaker PyTorch container, which installs
    # only SCRIPT_REQUIREMENTS: the default threshold must come from a module without pydantic
    loaded = packages_imported_by("import model.evaluate")
    assert "pydantic" not in loaded and "aws_lambda_powertools" not in loaded
    assert "model" in loaded


def test_evaluate_and_the_cli_load_without_matplotlib() -> None:
    # matplotlib is an optional extra: only drawing a figure imports it
    loaded = packages_imported_by("import model.evaluate, model.evaluation_plots, harness.cli")
    assert "matplotlib" not in loaded


def test_default_data_dir_is_the_shared_checkout() -> None:
    assert DEFAULT_DATA_DIR.parts[-4:] == ("shared", "data", "cifar100-bicycle-motorcycle", "train")


# ---------------------------------------------------------------- the click commands


def test_model_commands_are_evaluate_and_train() -> None:
    assert {command.name for command in COMMANDS} >= {"evaluate", "train"}


def test_evaluate_json_prints_one_object(labelled_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "confusion.png"
    result = CliRunner().invoke(evaluate, [str(labelled_dir), "--json", "--confusion-png", str(png)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == REPORT_KEYS  # the original accuracy, n, per_class, confusion and the new figures
    assert payload["n"] == 6
    assert png.is_file()
    # the new figures are consistent with the old ones
    assert payload["correct"] == round(payload["accuracy"] * 6)
    assert payload["accuracy_95"] == [round(bound, 4) for bound in wilson_interval(payload["correct"], 6)]
    # the default model carries its own threshold, fitted with it (the workflow's default is that one)
    calibrated = ImageClassifierModel.load().metadata["calibration"]["threshold"]
    assert payload["at_threshold"]["threshold"] == calibrated == DEFAULT_CONFIDENCE_THRESHOLD
    assert payload["at_threshold"]["source"] == THRESHOLD_CALIBRATED
    assert payload["at_threshold"]["n"] == 6
    assert payload["calibration"]["n"] == 6 and len(payload["calibration"]["bins"]) == 10
    assert 0.0 <= payload["calibration"]["ece"] <= 1.0


def test_evaluate_prints_tables(labelled_dir: Path) -> None:
    result = CliRunner().invoke(evaluate, [str(labelled_dir)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout
    assert "precision" in result.stdout
    assert "Confusion" in result.stdout
    assert "95 % CI" in result.stdout
    assert f"At threshold {DEFAULT_CONFIDENCE_THRESHOLD:.4g} (metadata.json calibration)" in result.stdout
    assert "/6 decided" in result.stdout
    assert "error rate among the decided" in result.stdout
    assert "expected calibration error (ECE)" in result.stdout


def test_evaluate_threshold_option(labelled_dir: Path) -> None:
    # At 0.5 every answer of a two-class model is decided
    result = CliRunner().invoke(evaluate, [str(labelled_dir), "--json", "--threshold", "0.5"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)["at_threshold"]
    assert (figures["threshold"], figures["decided"], figures["share_decided"]) == (0.5, 6, 1.0)
    assert figures["source"] == THRESHOLD_GIVEN


def test_evaluate_threshold_out_of_range_is_a_usage_error(labelled_dir: Path) -> None:
    result = CliRunner().invoke(evaluate, [str(labelled_dir), "--threshold", "1.5"])
    assert result.exit_code == 2
    assert "--threshold" in result.stderr


def test_evaluate_help_names_the_default_threshold() -> None:
    result = CliRunner().invoke(evaluate, ["--help"])
    assert "calibration.threshold" in result.stdout
    assert str(DEFAULT_CONFIDENCE_THRESHOLD) in result.stdout


def test_evaluate_uses_the_calibrated_threshold_of_the_model(labelled_dir: Path, tmp_path: Path) -> None:
    model_dir = model_dir_with(tmp_path, calibration={"threshold": 0.5})
    result = CliRunner().invoke(evaluate, [str(labelled_dir), "--json", "--model-dir", str(model_dir)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)["at_threshold"]
    assert (figures["threshold"], figures["source"], figures["decided"]) == (0.5, THRESHOLD_CALIBRATED, 6)


def test_evaluate_with_a_malformed_calibration_exits_2(labelled_dir: Path, tmp_path: Path) -> None:
    model_dir = model_dir_with(tmp_path, calibration={"threshold": "high"})
    result = CliRunner().invoke(evaluate, [str(labelled_dir), "--model-dir", str(model_dir)])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "calibration.threshold" in result.stderr


def test_evaluate_plots_dir_writes_both_figures(labelled_dir: Path, tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    reliability_png = tmp_path / "elsewhere" / "calibration.png"
    result = CliRunner().invoke(
        evaluate, [str(labelled_dir), "--plots-dir", str(plots), "--reliability-png", str(reliability_png)]
    )
    assert result.exit_code == 0, result.output
    for path in (plots / "confusion.png", plots / "reliability.png", reliability_png):
        with Image.open(path) as image:
            assert image.format == "PNG"
    assert f"reliability diagram written to {plots / 'reliability.png'}" in result.stdout
    assert f"confusion matrix written to {plots / 'confusion.png'}" in result.stdout


def test_evaluate_figures_without_matplotlib_say_how_to_install_it(
    labelled_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Python where matplotlib (the figures' optional `monitor` extra) cannot be found
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    # When figures are asked for / Then one line says how to install it, before anything is evaluated
    result = CliRunner().invoke(evaluate, [str(labelled_dir), "--plots-dir", str(tmp_path / "plots")])
    assert result.exit_code == 2
    assert result.stderr == "Error: the figures need matplotlib: pip install -e '.[monitor]'\n"
    assert result.stdout == "" and not (tmp_path / "plots").exists()
    # and without figures the evaluation needs no matplotlib
    assert CliRunner().invoke(evaluate, [str(labelled_dir), "--json"]).exit_code == 0


def test_evaluate_plots_dir_that_is_a_file_exits_2(labelled_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "plots").write_text("a file")
    result = CliRunner().invoke(evaluate, [str(labelled_dir), "--plots-dir", str(tmp_path / "plots")])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert result.stdout == ""


@pytest.mark.parametrize("setup", ["missing", "empty-class", "unknown-class"])
def test_evaluate_errors_are_one_message_and_exit_code_2(labelled_dir: Path, setup: str) -> None:
    target = labelled_dir
    if setup == "missing":
        target = labelled_dir / "nowhere"
    elif setup == "empty-class":
        for path in (labelled_dir / "bicycle").iterdir():
            path.unlink()
    else:
        (labelled_dir / "car").mkdir()
    result = CliRunner().invoke(evaluate, [str(target)])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_evaluate_with_a_missing_model_dir_exits_2(labelled_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(evaluate, [str(labelled_dir), "--model-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "metadata.json" in result.stderr


def test_evaluate_validation_split_without_one_in_the_metadata_exits_2(tmp_path: Path) -> None:
    # Given a model whose metadata.json has no validation split (a model trained on all the data)
    model_dir = model_dir_with(tmp_path, validation=None)
    # When
    result = CliRunner().invoke(
        evaluate, ["--validation-split", "--model-dir", str(model_dir), str(tmp_path)]
    )
    # Then one clear line, exit code 2
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "records no validation split" in result.stderr
    assert result.stdout == ""


def test_evaluate_without_a_directory_is_a_usage_error() -> None:
    result = CliRunner().invoke(evaluate, [])
    assert result.exit_code == 2
    assert "--validation-split" in result.stderr


@needs_shared_data
def test_evaluate_validation_split_json(tmp_path: Path) -> None:
    model, recorded = model_with_a_validation_split(tmp_path)
    result = CliRunner().invoke(
        evaluate, ["--validation-split", "--json", "--model-dir", str(model.model_dir), str(CIFAR_TRAIN)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(recorded)


def test_train_without_torch_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an environment where torch cannot be found
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a)
    )
    # When / Then
    result = CliRunner().invoke(train, ["--epochs", "1"])
    assert result.exit_code == 2
    assert "pip install -e '.[train]'" in result.stderr
