"""Figures of a candidate (one or more recipes' networks, with or without the mirror image) from its
members' out-of-fold logits, and the comparison table of every candidate cross-validated so far.

    python -m model.training.candidates            # the table model/README.md shows
    python -m model.training.candidates --json

Every member was cross-validated on the same folds (the same seed), so averaging their out-of-fold
logits image by image is what the averaged candidate would have predicted, fold by fold.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from model.metrics import decided_at, wilson_interval
from model.training.calibration import choose_threshold, fit_temperature, softmax
from model.training.recipes import RECIPES, Candidate, crossval_path


class MissingCrossValidationError(Exception):
    """A member recipe of the candidate has no cross-validation result (model/crossval/<recipe>.json)."""


def load_result(recipe: str) -> dict[str, Any]:
    path = crossval_path(recipe)
    if not path.is_file():
        raise MissingCrossValidationError(
            f"no cross-validation of recipe {recipe} at {path}: "
            f"python -m model.training.crossval --recipe {recipe} --output {path}"
        )
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def member_results(
    candidate: Candidate, loaded: Mapping[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The members' cross-validations (from `loaded` when given, else read), checked to share folds."""
    results = [loaded[m] if loaded is not None and m in loaded else load_result(m) for m in candidate.members]
    first = results[0]
    for other in results[1:]:
        if other["fold_of"] != first["fold_of"] or other["names"] != first["names"]:
            raise ValueError(f"{candidate.name}: members were cross-validated on different folds or images")
    return results


def averaged_logits(results: Sequence[dict[str, Any]], mirror: bool) -> np.ndarray:
    """What the averaged candidate would have predicted for each image, out of fold."""
    mode = "mirror" if mirror else "plain"
    return np.asarray(np.mean([np.asarray(r["oof_logits"][mode]) for r in results], axis=0))


def summarise_logits(
    logits: np.ndarray,
    labels: np.ndarray,
    fold_of: np.ndarray,
    check_labels: np.ndarray | None = None,
    check_logits: Sequence[np.ndarray] = (),
    max_error: float = 0.01,
) -> dict[str, Any]:
    """Accuracy (per fold, and pooled with its Wilson interval), then the temperature and threshold
    fitted on the out-of-fold logits, and what they give on the check set's per-fold predictions."""
    folds = sorted(set(fold_of.tolist()))
    accuracies = np.array([(logits[fold_of == k].argmax(1) == labels[fold_of == k]).mean() for k in folds])
    correct = int((logits.argmax(1) == labels).sum())
    temperature = fit_temperature(logits, labels)
    probabilities = softmax(logits, temperature)
    chosen = choose_threshold(probabilities, labels, max_error)
    entry: dict[str, Any] = {
        "fold_accuracies": [round(float(a), 4) for a in accuracies],
        "fold_accuracy_mean": round(float(accuracies.mean()), 4),
        "fold_accuracy_std": round(float(accuracies.std(ddof=1)), 4) if len(accuracies) > 1 else 0.0,
        "oof_accuracy": round(correct / len(labels), 4),
        "oof_accuracy_95": [round(v, 4) for v in wilson_interval(correct, len(labels))],
        "temperature": temperature,
        "threshold": chosen.to_dict(),
        "at_0.93": decided_at(probabilities, labels, 0.93).to_dict(),
    }
    if check_labels is not None and len(check_logits):
        per_fold_check: list[dict[str, Any]] = []
        for fold_logits in check_logits:
            check_probabilities = softmax(fold_logits, temperature)
            per_fold_check.append(
                {
                    "accuracy": round(float((check_probabilities.argmax(1) == check_labels).mean()), 4),
                    "at_threshold": decided_at(check_probabilities, check_labels, chosen.threshold).to_dict(),
                    "at_0.93": decided_at(check_probabilities, check_labels, 0.93).to_dict(),
                }
            )
        entry["check"] = per_fold_check
        entry["check_accuracy_mean"] = round(float(np.mean([c["accuracy"] for c in per_fold_check])), 4)
        entry["check_share_decided_mean"] = round(
            float(np.mean([c["at_threshold"]["share_decided"] for c in per_fold_check])), 4
        )
        entry["check_errors_among_decided"] = int(
            sum(c["at_threshold"]["errors_among_decided"] for c in per_fold_check)
        )
        entry["check_decided"] = int(sum(c["at_threshold"]["decided"] for c in per_fold_check))
    return entry


def summarise_candidate(
    candidate: Candidate, max_error: float = 0.01, loaded: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    results = member_results(candidate, loaded)
    first = results[0]
    mode = "mirror" if candidate.mirror else "plain"
    logits = averaged_logits(results, candidate.mirror)
    check_logits: list[np.ndarray] = []
    if all(r.get("check_logits") for r in results):
        check_logits = [
            np.mean([np.asarray(r["check_logits"][mode][k]) for r in results], axis=0)
            for k in range(len(first["check_logits"][mode]))
        ]
    summary = summarise_logits(
        logits,
        np.asarray(first["labels"]),
        np.asarray(first["fold_of"]),
        np.asarray(first["check_labels"]) if check_logits else None,
        check_logits,
        max_error,
    )
    return {
        "candidate": candidate.name,
        "folds": first["folds"],
        "seed": first["seed"],
        "training_seconds_per_fold": round(
            sum(float(np.mean([row["training_seconds"] for row in r["per_fold"]])) for r in results), 1
        ),
        **summary,
    }


def every_candidate() -> list[Candidate]:
    """Each recipe cross-validated so far, alone and with the mirror image, and each pair of them."""
    done = [name for name in RECIPES if crossval_path(name).is_file()]
    singles = [Candidate((name,), mirror) for name in done for mirror in (False, True)]
    pairs = [
        Candidate((a, b), mirror)
        for i, a in enumerate(done)
        for b in done[i + 1 :]
        for mirror in (False, True)
    ]
    return singles + pairs


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| candidate | fold accuracy, mean ± sd | out-of-fold accuracy (95 %) | T | threshold: decided, "
        "errors among decided | real-photo dev set, fold models: accuracy, decided at the threshold |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        low, high = row["oof_accuracy_95"]
        threshold = row["threshold"]
        check = (
            f"{row['check_accuracy_mean']:.3f}, {row['check_share_decided_mean']:.1%} "
            f"({row['check_errors_among_decided']} errors in {row['check_decided']})"
            if "check_accuracy_mean" in row
            else "–"
        )
        lines.append(
            f"| {row['candidate']} | {row['fold_accuracy_mean']:.3f} ± {row['fold_accuracy_std']:.3f} "
            f"| {row['oof_accuracy']:.3f} ({low:.3f}–{high:.3f}) | {row['temperature']:.3f} "
            f"| {threshold['threshold']:.3f}: {threshold['share_decided']:.1%}, "
            f"{threshold['errors_among_decided']} of {threshold['decided']} | {check} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    candidates = every_candidate()
    # Each recipe's file read once, not once per candidate it is a member of.
    loaded = {name: load_result(name) for name in {m for c in candidates for m in c.members}}
    rows = [summarise_candidate(candidate, loaded=loaded) for candidate in candidates]
    print(json.dumps(rows, indent=1) if args.json else table(rows))
    return rows


if __name__ == "__main__":
    main()
