"""Evaluation of the classifier on labelled folders, its report, and the `scones evaluate` command."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from model.cli import evaluate, model_commands, train
from model.evaluate import (
    DEFAULT_DATA_DIR,
    EvaluationInputError,
    build_report,
    evaluate_directory,
    evaluate_validation_split,
    list_labelled_images,
    write_confusion_png,
)
from model.inference import ImageClassifierModel

SHARED_DATA = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar100-bicycle-motorcycle" / "train"
)
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"shared CIFAR-100 sample data not checked out at {SHARED_DATA}"
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
        real = sorted((SHARED_DATA / label).glob("*.png"))[:3] if SHARED_DATA.is_dir() else []
        for i in range(3):
            target = root / label / f"{label}_{i}.png"
            if real:
                shutil.copyfile(real[i], target)
            else:
                target.write_bytes(synthetic_png(10 * index + i))
    return root


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
    assert set(as_dict) == {"accuracy", "n", "per_class", "confusion"}
    assert set(as_dict["per_class"]["bicycle"]) == {"precision", "recall", "support"}
    json.dumps(as_dict)  # serialisable as is


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


@needs_shared_data
def test_validation_split_reproduces_the_metadata_accuracy(model: ImageClassifierModel) -> None:
    # Given the held-out files recorded at training time / When re-evaluated through the ONNX server
    report = evaluate_validation_split(model, SHARED_DATA)
    # Then the figure in metadata.json is exactly reproduced
    assert report.n == model.metadata["validation"]["n"]
    assert report.accuracy == pytest.approx(model.metadata["validation"]["accuracy"])


def test_validation_split_from_a_missing_data_dir_is_an_input_error(
    tmp_path: Path, model: ImageClassifierModel
) -> None:
    with pytest.raises(EvaluationInputError, match="does not exist"):
        evaluate_validation_split(model, tmp_path / "missing")


def test_default_data_dir_is_the_shared_checkout() -> None:
    assert DEFAULT_DATA_DIR.parts[-4:] == ("shared", "data", "cifar100-bicycle-motorcycle", "train")


# ---------------------------------------------------------------- the click commands


def test_model_commands_are_evaluate_and_train() -> None:
    assert {command.name for command in model_commands} >= {"evaluate", "train"}


def test_evaluate_json_prints_one_object(labelled_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "confusion.png"
    result = CliRunner().invoke(evaluate, [str(labelled_dir), "--json", "--confusion-png", str(png)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"accuracy", "n", "per_class", "confusion"}
    assert payload["n"] == 6
    assert png.is_file()


def test_evaluate_prints_tables(labelled_dir: Path) -> None:
    result = CliRunner().invoke(evaluate, [str(labelled_dir)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout
    assert "precision" in result.stdout
    assert "Confusion" in result.stdout


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


def test_evaluate_without_a_directory_is_a_usage_error() -> None:
    result = CliRunner().invoke(evaluate, [])
    assert result.exit_code == 2
    assert "--validation-split" in result.stderr


@needs_shared_data
def test_evaluate_validation_split_json(model: ImageClassifierModel) -> None:
    result = CliRunner().invoke(evaluate, ["--validation-split", "--json", str(SHARED_DATA)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(model.metadata["validation"]["accuracy"])


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
