"""scones load's arithmetic and guards (the runs themselves:
tests/integration/harness/ops/test_deployed_stack.py)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.ops.load import LoadRateError, LoadReport, outcome_of, run_load
from harness.ops.quotas import (
    LARGE_REGIONS,
    STANDARD_QUOTAS,
    TokenBucket,
    polling_rate,
    quota,
    start_rate_limits,
)


def test_percentiles_are_linearly_interpolated_over_finished_executions() -> None:
    report = LoadReport(
        target="t", rate=1, duration=1, planned=100, latencies=[i / 100 for i in range(1, 101)]
    )
    assert report.percentiles() == pytest.approx({"p50": 0.505, "p95": 0.9505, "p99": 0.9901})


def test_no_finished_execution_has_no_percentiles() -> None:
    report = LoadReport(target="t", rate=1, duration=1, planned=1)
    assert report.percentiles() == {"p50": None, "p95": None, "p99": None}
    assert report.to_dict()["latency_seconds"] == {"p50": None, "p95": None, "p99": None}


def test_outcomes_name_the_error_of_failed_executions() -> None:
    assert outcome_of({"status": "SUCCEEDED"}) == "SUCCEEDED"
    assert outcome_of({"status": "FAILED", "error": "THRESHOLD_CONFIDENCE_NOT_MET"}) == (
        "FAILED: THRESHOLD_CONFIDENCE_NOT_MET"
    )
    assert outcome_of({"status": "TIMED_OUT"}) == "TIMED_OUT: -"


class _NeverCalled:
    bucket = "b"

    def start(self, execution_input: Any) -> str:
        raise AssertionError("no execution may start")


@pytest.mark.parametrize(
    ("region", "rate", "quota", "limit"),
    [
        ("us-east-1", 188, "StateTransition", "187.5"),  # 1,500 / 8
        ("eu-central-1", 63, "StateTransition", "62.5"),  # 500 / 8
        (None, 63, "StateTransition", "62.5"),  # region unknown: the lower figures
    ],
)
def test_a_rate_above_a_quota_is_refused_before_starting_naming_the_quota(
    region: str | None, rate: float, quota: str, limit: str
) -> None:
    with pytest.raises(LoadRateError, match=rf"above the {quota} quota's {limit}/s"):
        run_load(_NeverCalled(), ["k"], rate=rate, duration=1, region=region)  # type: ignore[arg-type]


def test_an_accounts_own_quotas_replace_the_table() -> None:
    # Given an account whose StateTransition quota was raised: StartExecution limits next
    with pytest.raises(LoadRateError, match=r"StartExecution quota's 150/s"):
        run_load(
            _NeverCalled(),  # type: ignore[arg-type]
            ["k"],
            rate=151,
            duration=1,
            region="ap-south-1",
            max_transition_rate=5000,
        )
    with pytest.raises(LoadRateError, match="StartExecution quota's 50/s"):
        run_load(_NeverCalled(), ["k"], rate=60, duration=1, max_start_rate=50)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("region", "starts", "transitions"),
    [
        ("us-east-1", 300, 187.5),
        ("us-west-2", 300, 187.5),
        ("eu-west-1", 300, 187.5),
        ("sa-east-1", 150, 62.5),
    ],
)
def test_start_rate_limits_per_region_class(region: str, starts: float, transitions: float) -> None:
    limits = {limit.quota: limit.max_rate for limit in start_rate_limits(region)}
    assert limits == {"StartExecution": starts, "StateTransition": transitions}
    # the lowest first: StateTransition binds before StartExecution everywhere with the default quotas
    assert start_rate_limits(region)[0].quota == "StateTransition"


@pytest.mark.parametrize(("region", "ceiling"), [("us-east-1", 12.0), ("eu-central-1", 8.0), (None, 8.0)])
def test_polling_stays_under_describe_executions_refill(region: str | None, ceiling: float) -> None:
    assert polling_rate(region) == ceiling == 0.8 * quota("DescribeExecution", region).refill_per_second
    assert polling_rate(region, 20.0) == ceiling  # what the load used to ask for: above the quota
    assert polling_rate(region, 2.0) == 2.0


def test_the_quota_table_has_the_documented_figures() -> None:
    # AWS Step Functions developer guide, service quotas (Standard workflows): bucket, refill per second
    assert STANDARD_QUOTAS["StartExecution"] == (TokenBucket(1300, 300), TokenBucket(800, 150))
    assert STANDARD_QUOTAS["StateTransition"] == (TokenBucket(5000, 1500), TokenBucket(800, 500))
    assert STANDARD_QUOTAS["DescribeExecution"] == (TokenBucket(300, 15), TokenBucket(250, 10))
    assert {"us-east-1", "us-west-2", "eu-west-1"} == LARGE_REGIONS


def test_nothing_to_send_is_refused() -> None:
    with pytest.raises(ValueError, match="no images"):
        run_load(_NeverCalled(), [], rate=1, duration=1)  # type: ignore[arg-type]
