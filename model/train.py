"""Train the default model on a CPU and export classifier.onnx plus metadata.json.

Also the SageMaker script-mode entry point: it reads SM_CHANNEL_TRAIN and SM_MODEL_DIR and takes the
hyperparameters as command-line arguments. The work is in `model.training` (see its docstring).
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
import os
from collections.abc import Sequence
from typing import Any

from model.evaluate import DEFAULT_DATA_DIR
from model.inference import DEFAULT_MODEL_DIR, MODEL_FILE
from model.training.pipeline import DEFAULT_SEED, TrainConfig, train
from model.training.recipes import DEFAULT_CANDIDATE, RECIPES, Candidate

OVERRIDES = ("epochs", "lr", "batch_size", "resolution")


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # SageMaker passes the channel and model locations as environment variables.
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("SM_CHANNEL_TRAIN", DEFAULT_DATA_DIR))
    )
    parser.add_argument(
        "--model-dir",
        "--output-dir",
        dest="model_dir",
        type=Path,
        default=Path(os.environ.get("SM_MODEL_DIR", DEFAULT_MODEL_DIR)),
    )
    parser.add_argument(
        "--recipe",
        default=DEFAULT_CANDIDATE.name,
        help=f"what to train: a recipe ({', '.join(RECIPES)}), or several joined with '+' (their networks "
        "averaged), optionally ending in '+mirror' (the mirror image averaged too) "
        f"[default: {DEFAULT_CANDIDATE.name}]",
    )
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's (ships uncalibrated)")
    parser.add_argument("--lr", type=float, default=None, help="override the recipe's peak learning rate")
    parser.add_argument("--batch-size", type=int, default=None, help="override the recipe's")
    parser.add_argument("--resolution", type=int, default=None, help="override the recipe's input upsampling")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--val-fraction", type=float, default=0.0, help="held-out share of each class (default 0)"
    )
    parser.add_argument(
        "--limit-per-class", type=int, default=None, help="train on the first N images per class"
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args(argv)
    if not 0.0 <= args.val_fraction < 1.0:
        parser.error("--val-fraction must be in [0, 1)")
    for name in ("epochs", "batch_size", "resolution"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.lr is not None and not 0 < args.lr < 1:
        parser.error("--lr must be in (0, 1)")
    try:
        candidate = Candidate.parse(args.recipe)
    except ValueError as exc:
        parser.error(str(exc))
    return TrainConfig(
        data_dir=args.data_dir,
        model_dir=args.model_dir,
        candidate=candidate,
        overrides={name: getattr(args, name) for name in OVERRIDES if getattr(args, name) is not None},
        seed=args.seed,
        threads=args.threads,
        val_fraction=args.val_fraction,
        limit_per_class=args.limit_per_class,
        progress=args.progress,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    config = parse_args(argv)
    metadata = train(config)
    model_file = config.model_dir / MODEL_FILE
    validation, training = metadata["validation"], metadata["training"]
    held_out = (
        f"; held-out accuracy {validation['accuracy']} on n={validation['n']}" if validation["n"] else ""
    )
    print(
        f"wrote {model_file} ({model_file.stat().st_size:,} bytes); recipe {config.candidate.name}, "
        f"{training['n_train']} images, temperature {metadata['calibration']['temperature']}, "
        f"threshold {metadata['calibration']['threshold']}{held_out}; training {training['seconds']} s"
    )
    return metadata


if __name__ == "__main__":
    main()
