"""The fine-tuning loop: AdamW with a one-cycle schedule and label smoothing, and batched prediction."""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from model.training.data import augment, to_unit_tensor
from model.training.network import LiteClassifier
from model.training.recipes import Recipe


def seed_everything(seed: int, threads: int) -> tuple[torch.Generator, np.random.Generator]:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    return torch.Generator().manual_seed(seed), np.random.default_rng(seed)


Progress = Callable[[int, float, float], None]  # (epoch, mean loss, seconds so far)


def fit(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    recipe: Recipe,
    *,
    seed: int,
    threads: int = 2,
    progress: Progress | None = None,
) -> LiteClassifier:
    """Fine-tune the backbone end to end on uint8 NHWC 32×32 images; returns the network in eval mode,
    upsampling to the recipe's served resolution."""
    generator, rng = seed_everything(seed, threads)
    network = LiteClassifier(
        class_names, recipe.resolution, recipe.backbone, recipe.dropout, head_init=recipe.head_init
    )
    # channels_last: oneDNN's faster convolution layout on CPU.
    network = network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    head = list(network.head.parameters())
    body = [p for p in network.parameters() if all(p is not q for q in head)]
    peaks = [recipe.lr, 3 * recipe.lr]
    optimiser = torch.optim.AdamW(
        [{"params": body, "lr": peaks[0]}, {"params": head, "lr": peaks[1]}], weight_decay=recipe.weight_decay
    )
    steps = recipe.epochs * math.ceil(len(labels) / recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=peaks, total_steps=steps, pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    targets_all = torch.from_numpy(labels)
    started = time.perf_counter()
    network.train()
    for epoch in range(1, recipe.epochs + 1):
        total = 0.0
        for batch in torch.randperm(len(labels), generator=generator).split(recipe.batch_size):
            if len(batch) < 2:
                continue  # BatchNorm needs two images; happens only with tiny smoke-test sets
            inputs = augment(images[batch.numpy()], recipe.resolution, recipe.augmentation, generator, rng)
            inputs = (inputs * 2 - 1).contiguous(memory_format=torch.channels_last)
            targets = targets_all[batch]
            mixed_targets, kept = targets, 1.0
            if rng.random() < recipe.cutmix_probability:
                inputs, partner, kept = cutmix(inputs, rng)
                mixed_targets = targets[partner]
            batch_loss = functools.partial(mixed_loss, network, loss_fn, inputs, targets, mixed_targets, kept)
            optimiser.zero_grad(set_to_none=True)
            loss = batch_loss()
            loss.backward()
            if recipe.sam_rho > 0:
                sharpness_aware_gradients(network, batch_loss, recipe.sam_rho)
            optimiser.step()
            schedule.step()
            total += loss.item() * len(batch)
        if progress is not None:
            progress(epoch, total / len(labels), time.perf_counter() - started)
    network.resolution = recipe.served_resolution
    return network.eval()


def mixed_loss(
    network: nn.Module,
    loss_fn: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    mixed_targets: torch.Tensor,
    kept: float,
) -> torch.Tensor:
    """The loss of a batch whose images keep `kept` of their own pixels (1.0 without CutMix)."""
    outputs = network(inputs)
    if kept == 1.0:
        return loss_fn(outputs, targets)
    return kept * loss_fn(outputs, targets) + (1 - kept) * loss_fn(outputs, mixed_targets)


def cutmix(inputs: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al., 2019): a box of each image replaced by the same box of a partner image in the
    batch; returns the mixed batch, the partner indices and the share of each image kept (the weight
    of its own label). Teaches the network to use the whole frame, not one telltale part."""
    n, _, height, width = inputs.shape
    share = float(rng.beta(1.0, 1.0))  # share of the area to replace
    box_h, box_w = round(height * math.sqrt(share)), round(width * math.sqrt(share))
    top, left = int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1))
    partner = torch.from_numpy(rng.permutation(n))
    mixed = inputs.clone()
    mixed[:, :, top : top + box_h, left : left + box_w] = inputs[
        partner, :, top : top + box_h, left : left + box_w
    ]
    return mixed, partner, 1.0 - box_h * box_w / (height * width)


def sharpness_aware_gradients(network: nn.Module, batch_loss: Callable[[], torch.Tensor], rho: float) -> None:
    """SAM (Foret et al., 2021): replace the gradients with those at the nearby weights where the loss
    climbs fastest, w + rho·g/‖g‖, so that the step heads for flat minima, which generalise better from
    few images. Expects the gradients at w; leaves the weights at w. BatchNorm's running statistics see
    the batch once, not twice."""
    parameters = [p for p in network.parameters() if p.grad is not None]
    with torch.no_grad():
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in parameters]))
        originals = [p.detach().clone() for p in parameters]  # restored exactly: w + e - e may round
        for p in parameters:
            p.add_(p.grad * (rho / (norm + 1e-12)))
            p.grad = None
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0)·running + 0·batch: unchanged
    try:
        batch_loss().backward()
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        with torch.no_grad():
            for p, original in zip(parameters, originals, strict=True):
                p.copy_(original)


@torch.no_grad()
def predict_views(network: nn.Module, images: np.ndarray, chunk: int = 100) -> dict[str, np.ndarray]:
    """Logits of uint8 NHWC images at the server's input size: "plain", and "mirror" (the mean of the
    image's and its mirror image's, as `network.Served` averages them)."""
    network.eval()
    plain, mirrored = [], []
    for start in range(0, len(images), chunk):
        x = to_unit_tensor(images[start : start + chunk]) * 2 - 1
        plain.append(network(x))
        mirrored.append(network(x.flip(3)))
    alone = torch.cat(plain).numpy().astype(np.float64)
    flipped = torch.cat(mirrored).numpy().astype(np.float64)
    return {"plain": alone, "mirror": (alone + flipped) / 2}
