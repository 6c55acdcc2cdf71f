"""Nothing lost: the accounting of a load run over execution results, topic and review-queue messages
(pure functions; the run itself: tests/integration/harness/local/test_faults_under_load.py)."""

from __future__ import annotations

from typing import Any

from harness.ops.accounting import Expectation, account, retries_by_state
from harness.ops.execution import ExecutionResult

ARN = "arn:aws:states:us-east-1:123456789012:execution:ImageClassificationStateMachine:"


def entered(state: str) -> dict[str, Any]:
    return {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": state}}


SCHEDULED = {"type": "TaskScheduled"}


def result(
    name: str,
    status: str = "SUCCEEDED",
    error: str | None = None,
    cause: str | None = "why",
    history: list[dict[str, Any]] | None = None,
) -> ExecutionResult:
    return ExecutionResult(
        execution_arn=ARN + name,
        status=status,
        input={"s3_key": f"{name}.png"},
        output={"label": "bicycle"} if status == "SUCCEEDED" else None,
        error=error,
        cause=cause if status != "SUCCEEDED" else None,
        seconds=0.1,
        history=history or [entered("ClassifyImage"), SCHEDULED],
    )


def notice(name: str) -> dict[str, Any]:
    return {"executionArn": ARN + name, "status": "FAILED"}


def review(name: str) -> dict[str, Any]:
    return {"execution_arn": ARN + name, "s3_key": f"{name}.png"}


def test_a_run_where_everything_is_where_it_belongs_has_nothing_unaccounted() -> None:
    # Given a success, a failure announced once and a low-confidence image announced and queued once
    results = [
        result("ok"),
        result("bad", "FAILED", "InvalidImageError"),
        result("unsure", "FAILED", "THRESHOLD_CONFIDENCE_NOT_MET"),
    ]
    # When they are accounted for
    accounting = account(
        [r.execution_arn for r in results], results, [notice("bad"), notice("unsure")], [review("unsure")]
    )
    # Then each is counted by outcome and nothing is unaccounted
    assert accounting.unaccounted == []
    assert accounting.outcomes == {
        "SUCCEEDED": 1,
        "FAILED: InvalidImageError": 1,
        "FAILED: THRESHOLD_CONFIDENCE_NOT_MET": 1,
    }
    assert (accounting.started, accounting.finished, accounting.announced, accounting.in_review) == (
        3,
        3,
        2,
        1,
    )


def test_an_execution_without_a_terminal_record_is_unaccounted() -> None:
    running = result("slow", "RUNNING", cause=None)
    accounting = account([ARN + "slow", ARN + "lost"], [running], [], [])
    assert accounting.unaccounted == [
        "slow: no single terminal record (RUNNING)",
        "lost: no single terminal record (0 records)",
    ]
    assert accounting.finished == 0


def test_two_records_of_one_execution_are_unaccounted() -> None:
    twice = [result("twice"), result("twice")]
    assert account([ARN + "twice"], twice, [], []).unaccounted == [
        "twice: no single terminal record (2 records)"
    ]


def test_a_failure_without_error_or_cause_has_no_reason() -> None:
    results = [result("mute", "FAILED", "InvalidImageError", cause=""), result("nameless", "FAILED", None)]
    accounting = account(
        [r.execution_arn for r in results], results, [notice("mute"), notice("nameless")], []
    )
    assert accounting.unaccounted == [
        "mute: FAILED: InvalidImageError without an error and a cause",
        "nameless: FAILED: - without an error and a cause",
    ]


def test_a_failure_announced_never_or_twice_is_unaccounted() -> None:
    results = [result("silent", "FAILED", "EndpointError"), result("loud", "TIMED_OUT", "States.Timeout")]
    accounting = account([r.execution_arn for r in results], results, [notice("loud"), notice("loud")], [])
    assert accounting.unaccounted == [
        "silent: FAILED: EndpointError announced 0 times, not once",
        "loud: TIMED_OUT: States.Timeout announced 2 times, not once",
    ]


def test_a_success_that_was_announced_is_unaccounted() -> None:
    accounting = account([ARN + "ok"], [result("ok")], [notice("ok")], [])
    assert accounting.unaccounted == ["ok: SUCCEEDED but announced 1 times"]


def test_a_low_confidence_image_missing_from_or_doubled_in_the_review_queue_is_unaccounted() -> None:
    results = [
        result("missing", "FAILED", "THRESHOLD_CONFIDENCE_NOT_MET"),
        result("doubled", "FAILED", "THRESHOLD_CONFIDENCE_NOT_MET"),
        result("ok"),
    ]
    accounting = account(
        [r.execution_arn for r in results],
        results,
        [notice("missing"), notice("doubled")],
        [review("doubled"), review("doubled"), review("ok")],
    )
    assert accounting.unaccounted == [
        "missing: low confidence, 0 times in the review queue, not once",
        "doubled: low confidence, 2 times in the review queue, not once",
        "ok: SUCCEEDED but 1 times in the review queue",
    ]


def test_messages_about_executions_this_run_did_not_start_are_listed() -> None:
    accounting = account([], [], [notice("stranger")], [review("stranger")])
    assert accounting.unaccounted == [
        f"announced, but not started by this run: {ARN}stranger",
        f"in the review queue, but not started by this run: {ARN}stranger",
    ]
    assert (accounting.announced, accounting.in_review) == (0, 0)


def test_retries_are_the_calls_beyond_one_per_entry_into_a_state() -> None:
    # Given serialize called once, classify three times (two retries), filter once
    history = [
        entered("SerializeImageData"),
        SCHEDULED,
        entered("ClassifyImage"),
        SCHEDULED,
        {"type": "TaskFailed"},
        SCHEDULED,
        {"type": "TaskFailed"},
        SCHEDULED,
        entered("FilterInferences"),
        {"type": "LambdaFunctionScheduled"},
    ]
    assert retries_by_state(history) == {"ClassifyImage": 2}
    # When accounted with another execution that was not retried
    results = [result("retried", history=history), result("once")]
    accounting = account([r.execution_arn for r in results], results, [], [])
    # Then one execution was retried, twice
    assert (accounting.retried_executions, accounting.total_retries) == (1, 2)


def test_a_fault_that_did_not_end_as_catalogued_is_listed_apart() -> None:
    # Given two executions with a fault: one ended as catalogued, one did not
    history = [entered("ClassifyImage"), SCHEDULED, SCHEDULED, SCHEDULED]
    results = [
        result("as-said", history=history),
        result("other", "FAILED", "EndpointError", history=history),
    ]
    expected = Expectation("throttling x2", frozenset({"SUCCEEDED"}), "ClassifyImage", 3)
    accounting = account(
        [r.execution_arn for r in results],
        results,
        [notice("other")],
        [],
        {ARN + "as-said": expected, ARN + "other": expected},
    )
    assert accounting.faults == {"throttling x2": 2}
    assert accounting.not_as_catalogued == [
        "other: throttling x2: EndpointError after 3 attempts of ClassifyImage, catalogued SUCCEEDED after 3"
    ]
    assert accounting.unaccounted == []


def test_a_fault_armed_for_an_image_that_failed_before_the_faulted_state_was_not_reached() -> None:
    # Given a ClassifyImage fault armed for an image that serialize already refused
    refused = result(
        "refused", "FAILED", "InvalidImageError", history=[entered("SerializeImageData"), SCHEDULED]
    )
    expected = Expectation("throttling x2", frozenset({"SUCCEEDED"}), "ClassifyImage", 3)
    accounting = account([ARN + "refused"], [refused], [notice("refused")], [], {ARN + "refused": expected})
    # Then the fault is counted as not reached, not as a fault that ended otherwise than catalogued
    assert (accounting.faults_not_reached, accounting.not_as_catalogued) == (1, [])
