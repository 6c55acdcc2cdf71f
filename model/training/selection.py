"""How good is *choosing* a candidate, on images the choice never saw (nested cross-validation).

    python -m model.training.selection                  # the shipping rule: one or two networks
    python -m model.training.selection --members 4      # what a larger search space would give
    python -m model.training.selection --tradeoff lite0-128-e25+lite0-128-cutmix  # its thresholds

The candidate table scores every candidate on the same 1,000 out-of-fold predictions, so the best row
is optimistic: it won a contest on those images. This replays the whole choice five times. For each
cross-validation fold k it picks a candidate by the shipping rule (model/README.md: within the latency
budget, the highest accuracy; within 0.003 of it, the cheapest) from the out-of-fold predictions of the
*other* four folds only, fits the temperature and the threshold there, and then scores fold k. Fold k's
images influence neither the choice, nor T, nor the threshold, so the pooled figures estimate what the
procedure, not one lucky candidate, does on unseen images of the same kind.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from model.training.calibration import choose_threshold, fit_temperature, softmax
from model.training.candidates import averaged_logits, load_result, member_results
from model.training.recipes import RECIPES, Candidate, crossval_path

# One network on one image, bare onnxruntime on one core (this project's 2-core Xeon, measured side by
# side; model/README.md). The mirror image doubles it; decoding a 32x32 PNG adds about DECODE_MS.
NETWORK_MS = {
    ("lite0", 96): 1.5,
    ("lite0", 128): 2.4,
    ("lite0", 160): 3.8,
    ("lite0", 224): 6.9,
    ("lite1", 128): 3.1,
    ("lite2", 128): 3.6,
}
DECODE_MS = 0.6
LATENCY_BUDGET_MS = 10.0
# Within this much accuracy of the best, the shipping rule takes the cheaper candidate.
CHEAPER_WITHIN = 0.003
TRADEOFF_THRESHOLDS = (0.9, 0.91, 0.92, 0.93, 0.94, 0.955, 0.97, 0.98)


def latency_ms(candidate: Candidate) -> float:
    """The estimated p50 per image of a candidate, including the decode."""
    recipes = [RECIPES[m] for m in candidate.members]
    per_image = sum(NETWORK_MS[(recipe.backbone, recipe.served_resolution)] for recipe in recipes)
    return DECODE_MS + per_image * (2 if candidate.mirror else 1)


def candidate_space(recipes: Sequence[str], max_members: int, budget_ms: float) -> Iterator[Candidate]:
    for size in range(1, max_members + 1):
        for members in itertools.combinations(recipes, size):
            for mirror in (False, True):
                candidate = Candidate(members, mirror)
                if latency_ms(candidate) <= budget_ms:
                    yield candidate


def choose(
    candidates: Sequence[Candidate], logits: dict[Candidate, np.ndarray], labels: np.ndarray, mask: np.ndarray
) -> Candidate:
    """The shipping rule on the images in `mask`: the most accurate; within CHEAPER_WITHIN, the cheapest."""
    accuracy = {c: float((logits[c][mask].argmax(1) == labels[mask]).mean()) for c in candidates}
    best = max(accuracy.values())
    close = [c for c in candidates if accuracy[c] >= best - CHEAPER_WITHIN - 1e-12]
    return min(close, key=lambda c: (latency_ms(c), -accuracy[c], c.name))


def calibrated_on(
    logits: np.ndarray, labels: np.ndarray, seen: np.ndarray, unseen: np.ndarray, max_error: float
) -> tuple[float, float, np.ndarray]:
    """T and the shipping rule's threshold fitted on the `seen` images; the `unseen` ones' probabilities."""
    temperature = fit_temperature(logits[seen], labels[seen])
    threshold = choose_threshold(softmax(logits[seen], temperature), labels[seen], max_error).threshold
    return temperature, float(threshold), softmax(logits[unseen], temperature)


@dataclass(frozen=True)
class HeldOutFold:
    fold: int
    chosen: str
    temperature: float
    threshold: float
    images: int
    correct: int
    decided: int
    errors_among_decided: int


def nested_estimate(
    candidates: Sequence[Candidate],
    logits: dict[Candidate, np.ndarray],
    labels: np.ndarray,
    fold_of: np.ndarray,
    max_error: float = 0.01,
) -> list[HeldOutFold]:
    """For each fold: choose, calibrate and set the threshold on the other folds, then score this one."""
    held_out = []
    for fold in sorted(set(fold_of.tolist())):
        seen, unseen = fold_of != fold, fold_of == fold
        chosen = choose(candidates, logits, labels, seen)
        temperature, threshold, probabilities = calibrated_on(logits[chosen], labels, seen, unseen, max_error)
        right = probabilities.argmax(1) == labels[unseen]
        decided = probabilities.max(1) >= threshold
        held_out.append(
            HeldOutFold(
                fold=int(fold),
                chosen=chosen.name,
                temperature=round(temperature, 4),
                threshold=round(float(threshold), 3),
                images=int(unseen.sum()),
                correct=int(right.sum()),
                decided=int(decided.sum()),
                errors_among_decided=int((decided & ~right).sum()),
            )
        )
    return held_out


def pooled(folds: Sequence[HeldOutFold]) -> dict[str, Any]:
    images = sum(f.images for f in folds)
    decided = sum(f.decided for f in folds)
    errors = sum(f.errors_among_decided for f in folds)
    return {
        "accuracy": round(sum(f.correct for f in folds) / images, 4),
        "share_decided": round(decided / images, 4),
        "errors_among_decided": errors,
        "decided": decided,
        "error_rate_among_decided": round(errors / decided, 4) if decided else 0.0,
    }


def run(max_members: int, budget_ms: float) -> dict[str, Any]:
    recipes = [name for name in RECIPES if crossval_path(name).is_file()]
    results = {name: load_result(name) for name in recipes}
    # Every candidate is scored on the same images and folds: check them all at once.
    first = member_results(Candidate(tuple(recipes)), results)[0]
    candidates = list(candidate_space(recipes, max_members, budget_ms))
    logits = {c: averaged_logits(member_results(c, results), c.mirror) for c in candidates}
    labels, fold_of = np.asarray(first["labels"]), np.asarray(first["fold_of"])
    folds = nested_estimate(candidates, logits, labels, fold_of)
    on_all = choose(candidates, logits, labels, np.ones_like(labels, dtype=bool))
    return {
        "max_members": max_members,
        "budget_ms": budget_ms,
        "recipes": len(recipes),
        "candidates": len(candidates),
        "chosen_on_all_images": on_all.name,
        "chosen_on_all_images_accuracy": round(float((logits[on_all].argmax(1) == labels).mean()), 4),
        "held_out": pooled(folds),
        "folds": [f.__dict__ for f in folds],
    }


def threshold_tradeoff(
    candidate: Candidate, thresholds: Sequence[float], max_error: float = 0.01
) -> list[dict[str, Any]]:
    """One candidate, no choice: for each fold, T fitted on the other folds, then what each threshold (and
    the shipping rule's own, fitted there too) decides on this fold. Pooled over the folds."""
    results = member_results(candidate)
    logits = averaged_logits(results, candidate.mirror)
    labels, fold_of = np.asarray(results[0]["labels"]), np.asarray(results[0]["fold_of"])
    rows: dict[str, list[int]] = {}
    for fold in sorted(set(fold_of.tolist())):
        seen, unseen = fold_of != fold, fold_of == fold
        _, rule, probabilities = calibrated_on(logits, labels, seen, unseen, max_error)
        right = probabilities.argmax(1) == labels[unseen]
        for name, threshold in [
            ("the shipping rule's, refitted", rule),
            *((f"{t:.3f}", t) for t in thresholds),
        ]:
            decided = probabilities.max(1) >= threshold
            counts = rows.setdefault(name, [0, 0])
            counts[0] += int(decided.sum())
            counts[1] += int((decided & ~right).sum())
    return [
        {
            "threshold": name,
            "share_decided": round(decided / len(labels), 4),
            "errors_among_decided": errors,
            "decided": decided,
            "error_rate_among_decided": round(errors / decided, 4) if decided else 0.0,
        }
        for name, (decided, errors) in rows.items()
    ]


def report(result: dict[str, Any]) -> str:
    held = result["held_out"]
    lines = [
        f"{result['candidates']} candidates of up to {result['max_members']} networks "
        f"from {result['recipes']} recipes, within {result['budget_ms']:g} ms",
        f"chosen on all 1,000 out-of-fold images: {result['chosen_on_all_images']} "
        f"({result['chosen_on_all_images_accuracy']:.3f}: the table's figure, optimistic)",
        f"the rule replayed, each fold scored by a choice made without it: accuracy {held['accuracy']:.3f}, "
        f"decided {held['share_decided']:.1%}, errors among decided {held['errors_among_decided']} of "
        f"{held['decided']} ({held['error_rate_among_decided']:.2%})",
    ]
    for fold in result["folds"]:
        lines.append(
            f"  fold {fold['fold']}: {fold['chosen']}, T {fold['temperature']}, "
            f"threshold {fold['threshold']}: "
            f"{fold['correct']}/{fold['images']} right, {fold['decided']} decided, "
            f"{fold['errors_among_decided']} wrong among them"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=2, help="largest number of networks averaged (2)")
    parser.add_argument("--budget-ms", type=float, default=LATENCY_BUDGET_MS)
    parser.add_argument("--tradeoff", metavar="CANDIDATE", help="held-out decided/errors per threshold")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.tradeoff:
        rows = threshold_tradeoff(Candidate.parse(args.tradeoff), TRADEOFF_THRESHOLDS)
        print(
            json.dumps(rows, indent=1)
            if args.json
            else "\n".join(
                f"{r['threshold']}: decided {r['share_decided']:.1%}, errors among decided "
                f"{r['errors_among_decided']} of {r['decided']} ({r['error_rate_among_decided']:.2%})"
                for r in rows
            )
        )
        return {"tradeoff": rows}
    result = run(args.members, args.budget_ms)
    print(json.dumps(result, indent=1) if args.json else report(result))
    return result


if __name__ == "__main__":
    main()
