"""The draw of faults for `scones load --faults`: seeded, at the share asked for, from the catalogue."""

from __future__ import annotations

import pytest

from harness.reliability.cases import FAULT_CASES
from harness.reliability.under_load import expectation, plan_faults

KEYS = [f"load/{i:05d}.png" for i in range(1000)]


def test_the_same_seed_draws_the_same_faults_and_another_seed_others() -> None:
    assert plan_faults(KEYS, 0.2, seed=1) == plan_faults(KEYS, 0.2, seed=1)
    assert plan_faults(KEYS, 0.2, seed=1) != plan_faults(KEYS, 0.2, seed=2)


def test_about_the_share_asked_for_gets_a_fault_of_the_catalogue() -> None:
    plan = plan_faults(KEYS, 0.2, seed=1)
    assert 150 <= len(plan) <= 250
    assert set(plan.values()) <= set(FAULT_CASES)
    assert len(set(plan.values())) > len(FAULT_CASES) // 2  # drawn across the catalogue
    assert plan_faults(KEYS, 0.0, seed=1) == {}
    assert len(plan_faults(KEYS, 1.0, seed=1)) == len(KEYS)


def test_a_keys_fault_does_not_depend_on_the_keys_after_it() -> None:
    assert plan_faults(KEYS[:100], 0.3, seed=7) == {
        k: v for k, v in plan_faults(KEYS, 0.3, seed=7).items() if k in KEYS[:100]
    }


def test_a_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        plan_faults(KEYS, 1.5, seed=1)


def test_a_fault_retried_past_leaves_the_image_to_the_model_which_may_be_unsure() -> None:
    retried = next(c for c in FAULT_CASES if c.outcome == "SUCCEEDED")
    final = next(c for c in FAULT_CASES if c.outcome == "EndpointError")
    assert expectation(retried).outcomes == {"SUCCEEDED", "THRESHOLD_CONFIDENCE_NOT_MET"}
    assert expectation(final).outcomes == {"EndpointError"}
    assert (expectation(final).state, expectation(final).attempts) == (final.state, final.attempts)
