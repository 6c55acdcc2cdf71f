"""scones load's arithmetic and guards (the runs themselves:
tests/integration/harness/ops/test_deployed_stack.py)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.ops.load import LoadRateError, LoadReport, outcome_of, run_load


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


def test_a_rate_above_the_start_execution_quota_is_refused_before_starting() -> None:
    with pytest.raises(LoadRateError, match="StartExecution quota of 150"):
        run_load(_NeverCalled(), ["k"], rate=151, duration=1)  # type: ignore[arg-type]
    with pytest.raises(LoadRateError, match="quota of 50"):
        run_load(_NeverCalled(), ["k"], rate=60, duration=1, max_start_rate=50)  # type: ignore[arg-type]


def test_nothing_to_send_is_refused() -> None:
    with pytest.raises(ValueError, match="no images"):
        run_load(_NeverCalled(), [], rate=1, duration=1)  # type: ignore[arg-type]
