"""The training recipes cross-validated so far, by name, and the one the default model ships with.

A recipe's figures live in `model/crossval/<name>.json` (written by `model.training.crossval`), and
model/README.md tables them. The shipped model's temperature and confidence threshold come from its
recipe's out-of-fold logits in that file, never from the images it was finally trained on.
"""

from __future__ import annotations

from pathlib import Path

from model.training.loop import Recipe

CROSSVAL_DIR = Path(__file__).resolve().parents[1] / "crossval"

RECIPES: dict[str, Recipe] = {
    "lite0-96": Recipe(resolution=96, epochs=12, mirror=False),
    "lite0-128": Recipe(resolution=128, epochs=15, mirror=False),
    "lite0-160": Recipe(resolution=160, epochs=15, mirror=False),
}
DEFAULT_RECIPE = "lite0-128"


def crossval_path(name: str) -> Path:
    return CROSSVAL_DIR / f"{name}.json"
