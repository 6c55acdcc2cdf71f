"""k-fold cross-validation of training recipes over the labelled images.

Each fold's network is trained on the other folds and predicts the images of its own fold, so every
image gets one out-of-fold prediction. Recipes are compared by the mean and spread of the per-fold
accuracies; the temperature and the confidence threshold of the chosen recipe are fitted on its
out-of-fold logits (`model.training.calibration`). Optionally each fold's network also predicts a
check set (the real-photo development set), which is reported and never trained or tuned on.

    python -m model.training.crossval --recipe lite0-128 --output model/crossval/lite0-128.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from model.evaluate import DEFAULT_DATA_DIR
from model.training.candidates import summarise_logits
from model.training.data import LabelledPixels, load_labelled, stratified_folds
from model.training.loop import fit, predict_views
from model.training.recipes import RECIPES, Recipe

DEFAULT_FOLDS = 5
DEFAULT_SEED = 20240611
DEFAULT_CHECK_DIR = DEFAULT_DATA_DIR.parents[1] / "real-photos-dev"


def run(
    data: LabelledPixels,
    recipe: Recipe,
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = DEFAULT_SEED,
    threads: int = 2,
    check: LabelledPixels | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Out-of-fold logits (plain and mirror-averaged) for every image, and per-fold figures."""
    fold_of = stratified_folds(data.labels, folds, seed)
    classes = len(data.class_names)
    oof = {"plain": np.zeros((len(data.labels), classes)), "mirror": np.zeros((len(data.labels), classes))}
    check_logits: dict[str, list[list[list[float]]]] = {"plain": [], "mirror": []}
    per_fold = []
    for k in range(folds):
        held, kept = np.flatnonzero(fold_of == k), np.flatnonzero(fold_of != k)
        started = time.perf_counter()
        network = fit(
            data.images[kept], data.labels[kept], data.class_names, recipe, seed=seed + k, threads=threads
        )
        seconds = time.perf_counter() - started
        row: dict[str, Any] = {"fold": k, "n": len(held), "training_seconds": round(seconds, 1)}
        held_views = predict_views(network, data.images[held])
        check_views = predict_views(network, check.images) if check is not None else {}
        for mode, logits in held_views.items():
            oof[mode][held] = logits
            row[f"accuracy_{mode}"] = round(float((logits.argmax(1) == data.labels[held]).mean()), 4)
            if check is not None:
                check_out = check_views[mode]
                check_logits[mode].append(check_out.round(5).tolist())
                row[f"check_accuracy_{mode}"] = round(float((check_out.argmax(1) == check.labels).mean()), 4)
        per_fold.append(row)
        log(json.dumps(row))
    return {
        "fold_of": fold_of.tolist(),
        "labels": data.labels.tolist(),
        "names": data.names,
        "class_names": data.class_names,
        "per_fold": per_fold,
        "oof_logits": {mode: logits.round(5).tolist() for mode, logits in oof.items()},
        "check_labels": check.labels.tolist() if check is not None else None,
        "check_logits": check_logits if check is not None else None,
    }


def summarise(result: dict[str, Any], max_error: float = 0.01) -> dict[str, Any]:
    """Per mode (the image alone, or averaged with its mirror): figures, temperature and threshold."""
    return {
        mode: summarise_logits(
            np.asarray(result["oof_logits"][mode]),
            np.asarray(result["labels"]),
            np.asarray(result["fold_of"]),
            np.asarray(result["check_labels"]) if result.get("check_logits") else None,
            [np.asarray(fold) for fold in result["check_logits"][mode]] if result.get("check_logits") else [],
            max_error,
        )
        for mode in ("plain", "mirror")
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), required=True)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--check-dir", type=Path, default=DEFAULT_CHECK_DIR, help="reported, never tuned on")
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's (smoke runs)")
    parser.add_argument("--limit-per-class", type=int, default=None)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    recipe = RECIPES[args.recipe]
    if args.epochs is not None:
        recipe = replace(recipe, epochs=args.epochs)
    data = load_labelled(args.data_dir, limit=args.limit_per_class)
    check = load_labelled(args.check_dir, data.class_names) if args.check_dir.is_dir() else None
    started = time.perf_counter()
    result = run(data, recipe, folds=args.folds, seed=args.seed, threads=args.threads, check=check)
    result["summary"] = summarise(result)
    result["recipe"] = {"name": args.recipe, **asdict(recipe)}
    result["folds"], result["seed"] = args.folds, args.seed
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["machine"] = {
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result) + "\n", encoding="utf-8")
    print(
        json.dumps({"recipe": args.recipe, "seconds": result["seconds"], **result["summary"]}, indent=1)[
            :4000
        ]
    )
    return result


if __name__ == "__main__":
    main()
