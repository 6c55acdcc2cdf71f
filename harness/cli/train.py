"""`scones train`: fine-tune the default model on this machine's CPU (the [train] extra)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.errors import one_line_errors
from harness.errors import require_extra
from model.evaluate import (
    DEFAULT_DATA_DIR,
)
from model.inference import DEFAULT_MODEL_DIR

_PATH = click.Path(path_type=Path)


@click.command("train")
@click.option(
    "--data-dir", type=_PATH, default=None, help=f"One folder per class [default: {DEFAULT_DATA_DIR}]."
)
@click.option(
    "--output-dir", type=_PATH, default=None, help=f"Where to write the model [default: {DEFAULT_MODEL_DIR}]."
)
@click.option(
    "--recipe",
    default=None,
    help="A recipe of model/training/recipes.py [default: the shipped model's]; see model/README.md.",
)
@click.option("--epochs", type=int, default=None, help="Override the recipe's.")
@click.option("--lr", type=float, default=None, help="Peak learning rate of the one-cycle schedule.")
@click.option("--batch-size", type=int, default=None)
@click.option("--resolution", type=int, default=None, help="Override the recipe's upsampled input side.")
@click.option("--seed", type=int, default=None)
@click.option(
    "--val-fraction", type=float, default=None, help="Held-out fraction of each class [default: 0, none]."
)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@one_line_errors
def train(no_progress: bool, **options: object) -> None:
    """Fine-tune the model on a CPU and write classifier.onnx and metadata.json (needs the [train] extra)."""
    require_extra("train", "training needs PyTorch and ONNX", "torch", "onnx")
    from model import train as trainer

    argv = [f"--{name.replace('_', '-')}={value}" for name, value in options.items() if value is not None]
    if no_progress:
        argv.append("--no-progress")
    trainer.main(argv)
