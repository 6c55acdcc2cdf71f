"""The labelled images as the server sees them, folds over them, and augmentation towards uploads.

Every image is decoded and resized to 32×32 exactly as `model.inference` does for a request, so a
CIFAR-100 thumbnail and a 12 MP phone photo reach the network in the same form. The network then
upsamples inside its own graph (`model.training.network`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from model.evaluate import LabelledImage, list_labelled_images
from model.inference import image_to_array
from model.training.recipes import Augmentation
from scones_common.images import decode_image

INPUT_SIZE = (32, 32)  # height, width: what the server resizes every image to


@dataclass(frozen=True)
class LabelledPixels:
    images: np.ndarray  # uint8 N x 32 x 32 x 3
    labels: np.ndarray  # int64 N
    names: list[str]  # relative file names, e.g. "bicycle/bicycle_s_000017.png"
    class_names: list[str]
    sources: list[LabelledImage]  # the files, as listed

    def take(self, indices: np.ndarray | Sequence[int]) -> LabelledPixels:
        index = np.asarray(indices, dtype=np.int64)
        return LabelledPixels(
            self.images[index],
            self.labels[index],
            [self.names[i] for i in index],
            self.class_names,
            [self.sources[i] for i in index],
        )


def limit_per_class(images: list[LabelledImage], limit: int | None) -> list[LabelledImage]:
    """The first `limit` images of each class (smoke tests train on a handful)."""
    if limit is None:
        return images
    kept: dict[str, int] = {}
    chosen = []
    for image in images:
        if kept.get(image.label, 0) < limit:
            kept[image.label] = kept.get(image.label, 0) + 1
            chosen.append(image)
    return chosen


def load_pixels(images: Sequence[LabelledImage]) -> np.ndarray:
    """Decode and resize exactly as the server does (same decoder, same resize)."""
    width_height = (INPUT_SIZE[1], INPUT_SIZE[0])
    return np.stack([image_to_array(decode_image(item.path.read_bytes()), width_height) for item in images])


def load_labelled(
    root: Path, class_names: Sequence[str] | None = None, limit: int | None = None
) -> LabelledPixels:
    """Every image under root/<class>/ as 32×32 pixels; the sorted folder names are the classes."""
    listed = limit_per_class(list_labelled_images(root, class_names), limit)
    names = list(class_names) if class_names is not None else sorted({image.label for image in listed})
    labels = np.array([names.index(image.label) for image in listed], dtype=np.int64)
    relative = [image.relative_name(root) for image in listed]
    return LabelledPixels(load_pixels(listed), labels, relative, names, listed)


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of (train, held out): `fraction` of each class, drawn with its own seeded generator."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    held_out: list[int] = []
    for label in sorted(set(labels)):
        members = [i for i, value in enumerate(labels) if value == label]
        shuffled = rng.permutation(members).tolist()
        n_held = round(len(members) * fraction)
        held_out.extend(shuffled[:n_held])
        train.extend(shuffled[n_held:])
    return sorted(train), sorted(held_out)


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold number of each image: each class dealt round robin over the folds in a seeded order."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        fold[members] = np.arange(len(members)) % folds
    return fold


# ---------------------------------------------------------------- augmentation


def jpeg_recompress(images: np.ndarray, aug: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """Re-encode a random share of uint8 NHWC images as JPEG at a random quality (Pillow, as uploads are)."""
    out = images.copy()
    for i in np.flatnonzero(rng.random(len(images)) < aug.jpeg_probability):
        buffer = io.BytesIO()
        quality = int(rng.integers(aug.jpeg_quality[0], aug.jpeg_quality[1] + 1))
        Image.fromarray(images[i]).save(buffer, "JPEG", quality=quality)
        out[i] = np.asarray(Image.open(buffer).convert("RGB"))
    return out


def to_unit_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC to float32 NCHW in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def random_resized_crop(
    batch: torch.Tensor, size: int, aug: Augmentation, generator: torch.Generator
) -> torch.Tensor:
    """A random window of each image (area share and aspect ratio drawn per image), mirrored half the
    time, resampled bilinearly to size×size: crop, scale and flip in one affine resampling."""
    n = batch.shape[0]
    scale = _uniform(n, *aug.crop_scale, generator)
    ratio = torch.exp(_uniform(n, math.log(aug.crop_ratio[0]), math.log(aug.crop_ratio[1]), generator))
    width = torch.sqrt(scale * ratio).clamp(max=1.0)
    height = torch.sqrt(scale / ratio).clamp(max=1.0)
    shift_x = (torch.rand(n, generator=generator) * 2 - 1) * (1 - width)
    shift_y = (torch.rand(n, generator=generator) * 2 - 1) * (1 - height)
    mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = width * mirror, shift_x
    theta[:, 1, 1], theta[:, 1, 2] = height, shift_y
    grid = F.affine_grid(theta, [n, batch.shape[1], size, size], align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
_BLUR = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])


def colour_and_blur(batch: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Saturation (or greyscale), contrast and brightness per image, then a 5×5 binomial blur on some."""
    n = batch.shape[0]

    def factor(strength: float) -> torch.Tensor:
        return 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * strength

    saturation = factor(aug.saturation)
    greyscale = torch.rand(n, 1, 1, 1, generator=generator) < aug.greyscale_probability
    saturation = torch.where(greyscale, torch.zeros_like(saturation), saturation)
    contrast, brightness = factor(aug.contrast), factor(aug.brightness)
    grey = (batch * _LUMA).sum(1, keepdim=True)
    out = grey + (batch - grey) * saturation
    mean = out.mean((1, 2, 3), keepdim=True)
    out = ((out - mean) * contrast + mean) * brightness
    blurred = torch.rand(n, generator=generator) < aug.blur_probability
    if blurred.any():
        kernel = _BLUR[:, None] * _BLUR[None, :]
        kernel = (kernel / kernel.sum()).expand(3, 1, 5, 5)
        out[blurred] = F.conv2d(F.pad(out[blurred], (2, 2, 2, 2), mode="reflect"), kernel, groups=3)
    return out.clamp(0.0, 1.0)


def augment(
    images: np.ndarray, size: int, aug: Augmentation, generator: torch.Generator, rng: np.random.Generator
) -> torch.Tensor:
    """uint8 NHWC 32×32 images to an augmented float32 NCHW batch in [0, 1] at size×size."""
    batch = to_unit_tensor(jpeg_recompress(images, aug, rng))
    return colour_and_blur(random_resized_crop(batch, size, aug, generator), aug, generator)
