"""The trainer: a seeded stratified split, torch-only augmentation, and a 1-epoch smoke run to ONNX."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="training extras not installed: pip install -e '.[train]'")
pytest.importorskip("onnx", reason="training extras not installed: pip install -e '.[train]'")

from model import train as trainer  # noqa: E402  (needs torch, imported after the skip)
from model.inference import ImageClassifierModel  # noqa: E402

SHARED_DATA = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar100-bicycle-motorcycle" / "train"
)


def make_tiny_dataset(root: Path, per_class: int = 20) -> Path:
    """`per_class` images per class: real CIFAR ones when the shared data is there, synthetic otherwise."""
    for index, label in enumerate(["bicycle", "motorcycle"]):
        (root / label).mkdir(parents=True)
        real = sorted((SHARED_DATA / label).glob("*.png"))[:per_class] if SHARED_DATA.is_dir() else []
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
    labels = [0] * 50 + [1] * 30
    train, validation = trainer.stratified_split(labels, 0.2, seed=7)
    assert sorted(train + validation) == list(range(80))
    assert sum(labels[i] == 0 for i in validation) == 10
    assert sum(labels[i] == 1 for i in validation) == 6


def test_stratified_split_is_seeded() -> None:
    labels = [0, 1] * 40
    assert trainer.stratified_split(labels, 0.25, seed=1) == trainer.stratified_split(labels, 0.25, seed=1)
    assert trainer.stratified_split(labels, 0.25, seed=1) != trainer.stratified_split(labels, 0.25, seed=2)


def test_augmentation_keeps_the_shape_and_is_seeded() -> None:
    batch = torch.randn(8, 3, 32, 32)
    first = trainer.augment(batch, torch.Generator().manual_seed(3))
    second = trainer.augment(batch, torch.Generator().manual_seed(3))
    assert first.shape == batch.shape
    assert torch.equal(first, second)


def test_random_crop_without_padding_room_is_the_identity() -> None:
    batch = torch.randn(4, 3, 32, 32)
    assert torch.equal(trainer.random_crop(batch, 0, torch.Generator().manual_seed(0)), batch)


def test_sagemaker_environment_sets_the_default_directories(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "train"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    config = trainer.parse_args(["--epochs", "3", "--lr", "0.1"])
    assert config.data_dir == tmp_path / "train"
    assert config.model_dir == tmp_path / "model"
    assert (config.epochs, config.lr) == (3, 0.1)


def test_one_epoch_smoke_run_exports_a_servable_model(tmp_path: Path) -> None:
    # Given 40 images, 20 per class
    data_dir = make_tiny_dataset(tmp_path / "data")
    model_dir = tmp_path / "model"
    # When trained for one epoch
    metadata = trainer.main(
        [
            "--data-dir",
            str(data_dir),
            "--model-dir",
            str(model_dir),
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--threads",
            "1",
            "--cascade-threshold",
            "0",  # the cascade has its own tests (test_teacher.py)
            "--no-progress",
        ]
    )
    # Then the artifacts exist, the metadata records the split, and the ONNX model serves probabilities
    assert (model_dir / "classifier.onnx").is_file()
    assert metadata["class_names"] == ["bicycle", "motorcycle"]
    assert metadata["validation"]["n"] == 8
    assert 0.0 <= metadata["validation"]["accuracy"] <= 1.0
    assert len(metadata["training"]["data_digest"]) == 64
    assert set(metadata["versions"]) >= {"torch", "onnx", "numpy", "python"}
    served = ImageClassifierModel.load(model_dir)
    probabilities = served.predict((data_dir / "bicycle" / "bicycle_000.png").read_bytes(), "image/png")
    assert len(probabilities) == 2
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    batch = served.predict_batch(
        [(data_dir / "motorcycle" / f"motorcycle_{i:03d}.png").read_bytes() for i in range(5)]
    )
    assert len(batch) == 5


def test_mixup_blends_the_images_with_the_given_weight() -> None:
    batch = torch.randn(6, 3, 32, 32)
    mixed, partner, weight = trainer.mix_batch(batch, "mixup", 0.7, torch.Generator().manual_seed(0))
    assert weight == 0.7
    assert sorted(partner.tolist()) == list(range(6))
    assert torch.allclose(mixed, 0.7 * batch + 0.3 * batch[partner])


def test_cutmix_weight_is_the_share_of_pixels_kept() -> None:
    batch = torch.randn(6, 3, 32, 32)
    mixed, partner, weight = trainer.mix_batch(batch, "cutmix", 0.5, torch.Generator().manual_seed(1))
    kept = (mixed == batch).all(dim=1).float().mean(dim=(1, 2))  # per image, the unpasted share
    pasted = (mixed == batch[partner]).all(dim=1)
    assert 0.0 < weight < 1.0
    # Images paired with themselves are unchanged; the others keep exactly `weight` of their pixels.
    moved = partner != torch.arange(6)
    assert torch.allclose(kept[moved], torch.full_like(kept[moved], weight))
    assert (pasted | (mixed == batch).all(dim=1)).all()  # every pixel is its own or the partner's
    with pytest.raises(ValueError):
        trainer.mix_batch(batch, "blend", 0.5, torch.Generator())


def test_weight_average_moves_towards_the_network_by_one_minus_decay() -> None:
    network = trainer.build_network(4, 2)
    average = trainer.WeightAverage(network, decay=0.75)
    before = [p.clone() for p in average.network.parameters()]
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(1.0)
    average.update(network)
    for old, new in zip(before, average.network.parameters(), strict=True):
        assert torch.allclose(new, old + 0.25)
    assert not any(p.requires_grad for p in average.network.parameters())


def test_ensemble_averages_the_members_logits() -> None:
    members = [trainer.build_network(4, 2).eval() for _ in range(2)]
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = (members[0](x) + members[1](x)) / 2
        assert torch.allclose(trainer.Ensemble(members).eval()(x), expected, atol=1e-6)


def test_recipe_flags_are_parsed_and_checked() -> None:
    config = trainer.parse_args(
        ["--mix", "cutmix", "--mix-alpha", "0.5", "--ema-decay", "0", "--ensemble", "1"]
    )
    assert (config.mix, config.mix_alpha, config.ema_decay, config.ensemble) == ("cutmix", 0.5, 0.0, 1)
    for bad in (["--ema-decay", "1"], ["--ensemble", "0"], ["--mix-alpha", "0"], ["--mix", "blend"]):
        with pytest.raises(SystemExit):
            trainer.parse_args(bad)
