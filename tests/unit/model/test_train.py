"""The trainer: splits and folds, augmentation, calibration, and smoke runs to a servable ONNX model."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="training extras not installed: pip install -e '.[train]'")
pytest.importorskip("onnx", reason="training extras not installed: pip install -e '.[train]'")
pytest.importorskip("efficientnet_lite_pytorch", reason="training extras not installed")

import torch.nn.functional as F  # noqa: E402
from torch import Tensor  # noqa: E402

from model import train as trainer  # noqa: E402  (needs torch, imported after the skip)
from model.evaluate import evaluate_validation_split  # noqa: E402
from model.inference import ImageClassifierModel  # noqa: E402
from model.training import crossval, recipes  # noqa: E402
from model.training.calibration import fit_temperature, softmax  # noqa: E402
from model.training.candidates import MissingCrossValidationError, summarise_candidate  # noqa: E402
from model.training.data import (  # noqa: E402
    Augmentation,
    augment,
    jpeg_recompress,
    load_labelled,
    random_resized_crop,
    stratified_folds,
    stratified_split,
)
from model.training.loop import fit, sharpness_aware_gradients  # noqa: E402
from model.training.network import IMAGENET_CLASSES, LiteClassifier, Served  # noqa: E402
from model.training.pipeline import load_calibration  # noqa: E402
from model.training.recipes import DEFAULT_CANDIDATE, Candidate, Recipe  # noqa: E402
from tests.helpers import SHARED_DATA  # noqa: E402

CIFAR_TRAIN = SHARED_DATA / "cifar100-bicycle-motorcycle" / "train"
TINY = Recipe(resolution=48, epochs=1, batch_size=8)


def make_tiny_dataset(root: Path, per_class: int = 20) -> Path:
    """`per_class` images per class: real CIFAR ones when the shared data is there, synthetic otherwise."""
    for index, label in enumerate(["bicycle", "motorcycle"]):
        (root / label).mkdir(parents=True)
        real = sorted((CIFAR_TRAIN / label).glob("*.png"))[:per_class] if CIFAR_TRAIN.is_dir() else []
        for i in range(per_class):
            target = root / label / f"{label}_{i:03d}.png"
            if real:
                shutil.copyfile(real[i], target)
            else:
                pixels = np.random.default_rng(100 * index + i).integers(0, 256, (32, 32, 4), dtype=np.uint8)
                pixels[..., 3] = 255
                buffer = io.BytesIO()
                Image.fromarray(pixels, "RGBA").save(buffer, format="PNG")
                target.write_bytes(buffer.getvalue())
    return root


def test_stratified_split_holds_out_the_fraction_of_each_class() -> None:
    labels = [0] * 40 + [1] * 24
    train, held_out = stratified_split(labels, 0.25, seed=7)
    assert sorted(train + held_out) == list(range(64))
    assert sum(labels[i] == 0 for i in held_out) == 10
    assert sum(labels[i] == 1 for i in held_out) == 6


def test_stratified_split_is_seeded() -> None:
    labels = [0, 1] * 20
    assert stratified_split(labels, 0.25, seed=1) == stratified_split(labels, 0.25, seed=1)
    assert stratified_split(labels, 0.25, seed=1) != stratified_split(labels, 0.25, seed=2)


def test_folds_are_stratified_and_seeded() -> None:
    labels = np.array([0] * 50 + [1] * 30)
    folds = stratified_folds(labels, 5, seed=3)
    for k in range(5):
        assert ((folds == k) & (labels == 0)).sum() == 10
        assert ((folds == k) & (labels == 1)).sum() == 6
    assert np.array_equal(folds, stratified_folds(labels, 5, seed=3))
    assert not np.array_equal(folds, stratified_folds(labels, 5, seed=4))


def _images(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_augmentation_resizes_keeps_the_range_and_is_seeded() -> None:
    def run(seed: int) -> Tensor:
        return augment(
            _images(), 64, Augmentation(), torch.Generator().manual_seed(seed), np.random.default_rng(seed)
        )

    first, second = run(1), run(1)
    assert first.shape == (6, 3, 64, 64)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert torch.equal(first, second)
    assert not torch.equal(first, run(2))


def test_a_crop_of_the_whole_image_is_a_bilinear_upsampling_or_its_mirror() -> None:
    batch = torch.from_numpy(_images(8)).permute(0, 3, 1, 2).float() / 255
    whole = Augmentation(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))
    out = random_resized_crop(batch, 64, whole, torch.Generator().manual_seed(0))
    upsampled = F.interpolate(batch, size=(64, 64), mode="bilinear", align_corners=False)
    for image, plain in zip(out, upsampled, strict=True):
        assert torch.allclose(image, plain, atol=1e-5) or torch.allclose(image, plain.flip(2), atol=1e-5)


def test_jpeg_recompression_changes_the_images_it_picks_and_only_those() -> None:
    images = _images()
    never = jpeg_recompress(images, Augmentation(jpeg_probability=0.0), np.random.default_rng(0))
    always = jpeg_recompress(images, Augmentation(jpeg_probability=1.0), np.random.default_rng(0))
    assert np.array_equal(never, images)
    assert all(not np.array_equal(a, b) for a, b in zip(always, images, strict=True))


def test_temperature_scaling_recovers_the_temperature_that_made_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(20000, 2))
    labels = np.array([rng.choice(2, p=p) for p in softmax(logits, 2.5)])
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.05)


def test_sam_takes_the_gradient_at_the_perturbed_weights_and_leaves_weights_and_statistics_alone() -> None:
    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2)
    ).train()
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))

    def batch_loss() -> Tensor:
        return F.cross_entropy(network(x), y)

    batch_loss().backward()
    gradient = [p.grad.clone() for p in network.parameters()]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gradient]))
    perturbed = copy.deepcopy(network)
    with torch.no_grad():
        for p, g in zip(perturbed.parameters(), gradient, strict=True):
            p.add_(g * 0.05 / norm)
    F.cross_entropy(perturbed(x), y).backward()
    weights = [p.detach().clone() for p in network.parameters()]
    statistics = network[1].running_mean.clone()

    sharpness_aware_gradients(network, batch_loss, rho=0.05)

    for p, w, q in zip(network.parameters(), weights, perturbed.parameters(), strict=True):
        assert torch.equal(p.detach(), w)
        assert torch.allclose(p.grad, q.grad, atol=1e-6)
    assert torch.equal(network[1].running_mean, statistics)
    assert not all(torch.allclose(p.grad, g) for p, g in zip(network.parameters(), gradient, strict=True))


def test_a_test_resolution_changes_only_the_size_the_trained_network_upsamples_to() -> None:
    at160 = recipes.RECIPES["lite0-128-cutmix-at160"]
    assert dataclasses.replace(at160, test_resolution=None) == recipes.RECIPES["lite0-128-cutmix"]
    assert at160.served_resolution == 160
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 1] * 8)
    classes = ["bicycle", "motorcycle"]
    trained = [
        fit(images, labels, classes, dataclasses.replace(TINY, test_resolution=size), seed=3)
        for size in (None, 64)
    ]
    assert [network.resolution for network in trained] == [48, 64]
    same, other = (network.state_dict() for network in trained)
    assert all(torch.equal(same[key], other[key]) for key in same)


def test_the_served_graph_is_the_tempered_softmax_of_the_mean_of_image_and_mirror() -> None:
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2)).eval()
    x = torch.randn(5, 3, 4, 4)
    expected = torch.softmax((network(x) + network(x.flip(3))) / 2 / 0.7, dim=1)
    assert torch.allclose(Served([network], 0.7, mirror=True)(x), expected, atol=1e-6)
    assert torch.allclose(Served([network], 1.0, mirror=False)(x), torch.softmax(network(x), 1), atol=1e-6)
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2)).eval()
    both = torch.softmax((network(x) + other(x)) / 2, dim=1)
    assert torch.allclose(Served([network, other], 1.0, mirror=False)(x), both, atol=1e-6)


def test_an_imagenet_head_starts_from_the_pre_trained_rows_of_its_nearest_classes() -> None:
    # Given the network built with head_init="imagenet" for our two classes
    network = LiteClassifier(["bicycle", "motorcycle"], 64, head_init="imagenet")
    imagenet = network.body._fc
    # Then each row of the new head is the mean of its ImageNet classes' rows, bias included
    for row, name in enumerate(["bicycle", "motorcycle"]):
        rows = list(IMAGENET_CLASSES[name])
        assert torch.allclose(network.head.weight[row], imagenet.weight[rows].mean(0))
        assert torch.allclose(network.head.bias[row], imagenet.bias[rows].mean())
    # And a random head differs from it
    random_head = LiteClassifier(["bicycle", "motorcycle"], 64).head.weight
    assert not torch.allclose(random_head, network.head.weight)


def test_an_imagenet_head_refuses_classes_it_has_no_imagenet_rows_for() -> None:
    with pytest.raises(ValueError, match="no ImageNet classes for \\['scooter'\\]"):
        LiteClassifier(["bicycle", "scooter"], 64, head_init="imagenet")
    with pytest.raises(ValueError, match="unknown head_init"):
        LiteClassifier(["bicycle", "motorcycle"], 64, head_init="zeros")


def test_sagemaker_environment_sets_the_default_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "train"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    config = trainer.parse_args(["--epochs", "3", "--lr", "0.01"])
    assert config.data_dir == tmp_path / "train"
    assert config.model_dir == tmp_path / "model"
    # every member of the default candidate gets the overrides
    assert [(recipe.epochs, recipe.lr) for recipe in config.recipes()] == [(3, 0.01)] * len(
        DEFAULT_CANDIDATE.members
    )


def test_a_candidate_is_recipes_joined_by_plus_with_an_optional_mirror() -> None:
    assert Candidate.parse("lite0-128") == Candidate(("lite0-128",), mirror=False)
    assert Candidate.parse("lite0-96+lite0-128+mirror") == Candidate(("lite0-96", "lite0-128"), mirror=True)
    assert Candidate.parse("lite0-96+mirror").name == "lite0-96+mirror"
    for bad in ("", "mirror", "lite9-1", "lite0-128+lite9"):
        with pytest.raises(ValueError, match="unknown candidate"):
            Candidate.parse(bad)


@pytest.mark.parametrize(
    "flag", [["--epochs", "0"], ["--lr", "2"], ["--val-fraction", "1"], ["--recipe", "lite0-7"]]
)
def test_bad_settings_are_refused(flag: list[str]) -> None:
    with pytest.raises(SystemExit):
        trainer.parse_args(flag)


def test_cross_validation_predicts_every_image_once_out_of_fold(tmp_path: Path) -> None:
    data = load_labelled(make_tiny_dataset(tmp_path / "data", per_class=6))
    result = crossval.run(data, TINY, folds=3, seed=0, threads=1, log=lambda _: None)
    assert sorted(result["fold_of"]) == sorted([0, 1, 2] * 4)
    assert all(len(row) == 2 for row in result["oof_logits"]["plain"])
    assert not any(row == [0.0, 0.0] for row in result["oof_logits"]["plain"])
    summary = crossval.summarise(result)
    assert set(summary) == {"plain", "mirror"}
    assert summary["plain"]["temperature"] > 0
    assert [row["fold"] for row in result["per_fold"]] == [0, 1, 2]


def _fake_crossval(directory: Path, recipe: str, logits: list[list[float]], labels: list[int]) -> None:
    """A cross-validation result of `recipe` as model.training.crossval writes it (two folds)."""
    directory.mkdir(parents=True, exist_ok=True)
    result = {
        "recipe": {"name": recipe},
        "folds": 2,
        "seed": 0,
        "names": [f"image{i}.png" for i in range(len(labels))],
        "labels": labels,
        "fold_of": [i % 2 for i in range(len(labels))],
        "per_fold": [{"fold": 0, "training_seconds": 10.0}, {"fold": 1, "training_seconds": 12.0}],
        "oof_logits": {"plain": logits, "mirror": logits},
        "check_labels": None,
        "check_logits": None,
    }
    (directory / f"{recipe}.json").write_text(json.dumps(result))


def test_a_candidate_of_two_recipes_is_scored_on_their_averaged_out_of_fold_logits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two recipes, each right on a different half of 4 images, and wrong but unsure elsewhere
    monkeypatch.setattr(recipes, "CROSSVAL_DIR", tmp_path)
    labels = [0, 1, 0, 1]
    _fake_crossval(tmp_path, "lite0-96", [[3, 0], [0, 3], [0, 1], [1, 0]], labels)
    _fake_crossval(tmp_path, "lite0-128", [[0, 1], [1, 0], [3, 0], [0, 3]], labels)
    # When each is summarised alone and together
    alone = summarise_candidate(Candidate(("lite0-96",)))
    together = summarise_candidate(Candidate(("lite0-96", "lite0-128")))
    # Then each alone is right on half; the average of the logits is right on all four
    assert alone["oof_accuracy"] == 0.5
    assert together["oof_accuracy"] == 1.0
    assert together["candidate"] == "lite0-96+lite0-128"
    assert together["training_seconds_per_fold"] == 22.0


def test_a_candidate_without_cross_validation_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recipes, "CROSSVAL_DIR", tmp_path)
    with pytest.raises(
        MissingCrossValidationError, match=r"python -m model\.training\.crossval --recipe lite0-96"
    ):
        summarise_candidate(Candidate(("lite0-96",)))


def test_one_epoch_smoke_run_exports_a_servable_model(tmp_path: Path) -> None:
    # Given 40 images
    data_dir = make_tiny_dataset(tmp_path / "data")
    model_dir = tmp_path / "model"
    # When trained for one epoch with 8 images held out
    metadata = trainer.main(
        [
            *("--data-dir", str(data_dir), "--model-dir", str(model_dir), "--recipe", "lite0-96+mirror"),
            *("--epochs", "1", "--batch-size", "16", "--threads", "1", "--resolution", "48"),
            *("--val-fraction", "0.2", "--no-progress"),
        ]
    )
    # Then the artifacts exist, the metadata records the split, and the ONNX model serves
    assert (model_dir / "classifier.onnx").is_file()
    assert metadata["class_names"] == ["bicycle", "motorcycle"]
    assert metadata["validation"]["n"] == 8
    assert 0.0 <= metadata["validation"]["accuracy"] <= 1.0
    assert metadata["export"]["parity_max_difference"] < 1e-4
    assert len(metadata["training"]["data_digest"]) == 64
    assert set(metadata["versions"]) >= {"torch", "onnx", "numpy", "python"}
    # and a recipe changed from the cross-validated one ships uncalibrated, saying why
    calibration = metadata["calibration"]
    assert calibration["temperature"] == 1.0 and calibration["threshold"] is None
    assert "the recipe was changed" in calibration["source"] and "epochs=1" in calibration["source"]
    served = ImageClassifierModel.load(model_dir)
    # the recorded held-out accuracy is the served artifact's, as `scones evaluate` reproduces it
    assert evaluate_validation_split(served, data_dir).accuracy == metadata["validation"]["accuracy"]
    probabilities = served.predict((data_dir / "bicycle" / "bicycle_000.png").read_bytes(), "image/png")
    assert len(probabilities) == 2
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    batch = served.predict_batch(
        [(data_dir / "motorcycle" / f"motorcycle_{i:03d}.png").read_bytes() for i in range(5)]
    )
    assert len(batch) == 5


def test_the_shipped_calibration_is_the_candidates_out_of_fold_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cross-validation of lite0-96 whose logits are twice too confident on 400 images
    monkeypatch.setattr(recipes, "CROSSVAL_DIR", tmp_path / "crossval")
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(400, 2))
    labels = [int(rng.choice(2, p=p)) for p in softmax(logits, 2.0)]
    _fake_crossval(tmp_path / "crossval", "lite0-96", logits.tolist(), labels)
    config = trainer.parse_args(["--recipe", "lite0-96", "--model-dir", str(tmp_path / "model")])
    # When its calibration is loaded, as training does before it starts
    calibration = load_calibration(config)
    # Then the temperature is the out-of-fold fit and the threshold one of its grid
    assert calibration.temperature == pytest.approx(2.0, rel=0.25)
    assert calibration.threshold is not None and 0.5 <= calibration.threshold <= 1.0
    assert "2-fold out-of-fold logits of lite0-96" in calibration.source
