"""Nothing lost under load: every started execution accounted for, from its terminal record, the
notification topic and the review queue (pure functions over what `scones load` collected).

An execution is accounted for when it has exactly one terminal record with a reason (an output when it
succeeded, an error and a cause otherwise), was announced on the topic exactly once if it failed, timed
out or was aborted (ExecutionFailedRule's pattern) and never if it succeeded, and, if it ended for low
confidence, waits in the review queue exactly once. Anything else is listed as unaccounted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.ops.execution import TERMINAL_STATUSES, ExecutionResult

LOW_CONFIDENCE = "THRESHOLD_CONFIDENCE_NOT_MET"
# The statuses template.yaml's ExecutionFailedRule forwards to NotificationTopic.
ANNOUNCED_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
_TASK_SCHEDULED = ("TaskScheduled", "LambdaFunctionScheduled")


@dataclass(frozen=True)
class Expectation:
    """How an execution with an injected fault must end: one of `outcomes` (SUCCEEDED or an error
    name), after `attempts` calls of `state`'s resource."""

    fault: str
    outcomes: frozenset[str]
    state: str
    attempts: int


@dataclass
class Accounting:
    started: int
    outcomes: Counter[str] = field(default_factory=Counter)  # "SUCCEEDED", "FAILED: InvalidImageError"
    retried_executions: int = 0  # executions with at least one retried state
    retries: Counter[str] = field(default_factory=Counter)  # retries by state
    announced: int = 0  # messages on the topic about the executions started
    in_review: int = 0  # messages in the review queue about the executions started
    faults: Counter[str] = field(default_factory=Counter)  # injected, by fault name
    # Armed for an image that ended before the faulted state (an invalid image never reaches the endpoint).
    faults_not_reached: int = 0
    unaccounted: list[str] = field(default_factory=list)
    not_as_catalogued: list[str] = field(default_factory=list)

    @property
    def total_retries(self) -> int:
        return sum(self.retries.values())

    @property
    def finished(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome.split(":")[0] in TERMINAL_STATUSES)

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "finished": self.finished,
            "outcomes": dict(sorted(self.outcomes.items())),
            "retried_executions": self.retried_executions,
            "retries": self.total_retries,
            "retries_by_state": dict(sorted(self.retries.items())),
            "announced": self.announced,
            "in_review": self.in_review,
            "faults_injected": sum(self.faults.values()),
            "faults": dict(sorted(self.faults.items())),
            "faults_not_reached": self.faults_not_reached,
            "unaccounted": self.unaccounted,
            "not_as_catalogued": self.not_as_catalogued,
        }


def retries_by_state(history: Sequence[Mapping[str, Any]]) -> Counter[str]:
    """Per Task state, the calls of its resource beyond one per entry into the state: its retries."""
    entered: Counter[str] = Counter()
    scheduled: Counter[str] = Counter()
    current: str | None = None
    for event in history:
        details = event.get("stateEnteredEventDetails")
        if details:
            current = str(details["name"])
            entered[current] += 1
        elif event.get("type") in _TASK_SCHEDULED and current is not None:
            scheduled[current] += 1
    return Counter({state: n - entered[state] for state, n in scheduled.items() if n > entered[state]})


def outcome_of(result: ExecutionResult) -> str:
    """SUCCEEDED, or the status and the error: FAILED: InvalidImageError, RUNNING: -."""
    if result.status == "SUCCEEDED":
        return result.status
    return f"{result.status}: {result.error or '-'}"


def _name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def account(
    started: Sequence[str],
    results: Sequence[ExecutionResult],
    announcements: Sequence[Mapping[str, Any]],
    reviews: Sequence[Mapping[str, Any]],
    expected: Mapping[str, Expectation] | None = None,
) -> Accounting:
    """Account for each started execution (by ARN) from its results (DescribeExecution + history), the
    topic's messages (ExecutionFailedRule's: `executionArn`) and the review queue's (`execution_arn`).
    `expected` holds, by ARN, how the executions with an injected fault must end."""
    expected = expected or {}
    report = Accounting(started=len(started))
    records: dict[str, list[ExecutionResult]] = {}
    for result in results:
        records.setdefault(result.execution_arn, []).append(result)
    announced = Counter(str(message.get("executionArn")) for message in announcements)
    reviewed = Counter(str(message.get("execution_arn")) for message in reviews)
    ours = set(started)
    report.announced = sum(n for arn, n in announced.items() if arn in ours)
    report.in_review = sum(n for arn, n in reviewed.items() if arn in ours)
    problems = report.unaccounted

    for arn in started:
        name = _name(arn)
        found = records.get(arn, [])
        terminal = [r for r in found if r.status in TERMINAL_STATUSES]
        if len(found) != 1 or len(terminal) != 1:
            report.outcomes[outcome_of(found[0]) if found else "NO RECORD"] += 1
            what = found[0].status if len(found) == 1 else f"{len(found)} records"
            problems.append(f"{name}: no single terminal record ({what})")
            continue
        (result,) = terminal
        outcome = outcome_of(result)
        report.outcomes[outcome] += 1
        retries = retries_by_state(result.history)
        report.retries.update(retries)
        report.retried_executions += bool(retries)
        if result.status == "SUCCEEDED" and result.output is None:
            problems.append(f"{name}: SUCCEEDED without an output")
        if result.status != "SUCCEEDED" and not (result.error and result.cause):
            problems.append(f"{name}: {outcome} without an error and a cause")
        times = announced[arn]
        if result.status in ANNOUNCED_STATUSES and times != 1:
            problems.append(f"{name}: {outcome} announced {times} times, not once")
        elif result.status not in ANNOUNCED_STATUSES and times:
            problems.append(f"{name}: {outcome} but announced {times} times")
        waiting = reviewed[arn]
        if result.error == LOW_CONFIDENCE and waiting != 1:
            problems.append(f"{name}: low confidence, {waiting} times in the review queue, not once")
        elif result.error != LOW_CONFIDENCE and waiting:
            problems.append(f"{name}: {outcome} but {waiting} times in the review queue")
        expectation = expected.get(arn)
        if expectation is not None:
            report.faults[expectation.fault] += 1
            ended = result.status if result.status == "SUCCEEDED" else str(result.error)
            attempts = result.attempts(expectation.state)
            if attempts == 0 and result.status != "SUCCEEDED":
                report.faults_not_reached += 1
            elif ended not in expectation.outcomes or attempts != expectation.attempts:
                report.not_as_catalogued.append(
                    f"{name}: {expectation.fault}: {ended} after {attempts} attempts of {expectation.state}, "
                    f"catalogued {' or '.join(sorted(expectation.outcomes))} after {expectation.attempts}"
                )

    for arn in sorted(set(announced) - ours):
        problems.append(f"announced, but not started by this run: {arn}")
    for arn in sorted(set(reviewed) - ours):
        problems.append(f"in the review queue, but not started by this run: {arn}")
    return report
