"""The nested estimate of the shipping rule (model.training.selection): choice, cost and held-out scoring."""

from __future__ import annotations

import numpy as np
import pytest

from model.training import selection
from model.training.recipes import Candidate, crossval_path
from tests.helpers import packages_imported_by

LABELS = np.array([0, 1] * 10)
FOLD_OF = np.repeat(np.arange(2), 10)


def _logits(right: np.ndarray, margin: float = 4.0) -> np.ndarray:
    """Two-class logits that are right where `right` is True, with the given margin."""
    predicted = np.where(right, LABELS, 1 - LABELS)
    out = np.zeros((len(LABELS), 2))
    out[np.arange(len(LABELS)), predicted] = margin
    return out


def test_comparing_recipes_needs_no_torch() -> None:
    """The table and the replayed rule read JSON: they run without the train extra."""
    assert not {"torch", "onnx", "onnxruntime"} & packages_imported_by(
        "import model.training.candidates, model.training.selection"
    )


def test_latency_counts_each_network_and_doubles_for_the_mirror_image() -> None:
    pair = Candidate(("lite0-128", "lite0-160"), False)
    assert selection.latency_ms(pair) == pytest.approx(selection.DECODE_MS + 2.4 + 3.8)
    assert selection.latency_ms(Candidate(("lite0-128",), True)) == pytest.approx(selection.DECODE_MS + 4.8)
    # a network trained at 128 px that predicts at 160 px costs a 160-px pass
    at160 = Candidate(("lite0-128-cutmix-at160",), False)
    assert selection.latency_ms(at160) == pytest.approx(selection.DECODE_MS + 3.8)


def test_the_space_leaves_out_candidates_over_the_budget() -> None:
    recipes = ["lite0-96", "lite0-128", "lite0-160"]
    names = {c.name for c in selection.candidate_space(recipes, 2, 6.0)}
    assert "lite0-160+mirror" not in names  # 0.6 + 7.6 ms
    assert "lite0-96+lite0-128" in names  # 0.6 + 3.9 ms
    assert "lite0-128+lite0-160" not in names  # 0.6 + 6.2 ms


def test_within_the_tolerance_the_cheaper_candidate_is_chosen() -> None:
    cheap, dear = Candidate(("lite0-96",), False), Candidate(("lite0-160",), False)
    right_dear = np.ones(len(LABELS), dtype=bool)
    right_cheap = right_dear.copy()
    right_cheap[0] = False  # 0.95 against 1.0: far outside 0.003
    logits = {cheap: _logits(right_cheap), dear: _logits(right_dear)}
    everything = np.ones(len(LABELS), dtype=bool)
    assert selection.choose([cheap, dear], logits, LABELS, everything) == dear
    logits[cheap] = _logits(right_dear)
    assert selection.choose([cheap, dear], logits, LABELS, everything) == cheap


def test_each_fold_is_scored_by_a_choice_made_on_the_other_folds_only() -> None:
    # `a` is perfect on fold 0 and wrong on half of fold 1; `b` the other way round. A choice that could see
    # the fold it is scored on would pick the perfect one each time (20/20); the nested one picks the
    # other and scores 10/20.
    a, b = Candidate(("lite0-96",), False), Candidate(("lite0-128",), False)
    right_a = np.ones(len(LABELS), dtype=bool)
    right_a[10:15] = False
    right_b = np.ones(len(LABELS), dtype=bool)
    right_b[0:5] = False
    logits = {a: _logits(right_a), b: _logits(right_b)}
    folds = selection.nested_estimate([a, b], logits, LABELS, FOLD_OF)
    assert [f.chosen for f in folds] == [b.name, a.name]
    assert [f.correct for f in folds] == [5, 5]
    assert selection.pooled(folds)["accuracy"] == 0.5


@pytest.mark.skipif(not crossval_path("lite0-128").is_file(), reason="no cross-validation results")
def test_on_the_committed_results_the_replayed_rule_is_no_better_than_the_table_says() -> None:
    result = selection.run(max_members=2, budget_ms=selection.LATENCY_BUDGET_MS)
    assert result["held_out"]["accuracy"] <= result["chosen_on_all_images_accuracy"]
    assert len(result["folds"]) == 5


@pytest.mark.skipif(not crossval_path("lite0-128").is_file(), reason="no cross-validation results")
def test_a_lower_threshold_decides_more_images_held_out() -> None:
    rows = selection.threshold_tradeoff(Candidate(("lite0-128",), False), (0.9, 0.99))
    by_threshold = {row["threshold"]: row for row in rows}
    assert by_threshold["0.900"]["decided"] > by_threshold["0.990"]["decided"]
    assert by_threshold["0.900"]["errors_among_decided"] >= by_threshold["0.990"]["errors_among_decided"]
    assert len(rows) == 3  # the shipping rule's threshold, refitted fold by fold, comes first
