"""A steady stream of executions for a duration (`scones load`), locally or against a deployed stack.

Open loop: execution i starts at t0 + i / rate whatever the earlier ones are doing, as uploads arrive in
production. Latency is each execution's own start-to-stop time as Step Functions records it
(describe_execution), so how often this process polls does not change the figures.

Quotas (harness/ops/quotas.py, one table): a start rate above what StartExecution or the state
transitions of the executions allow in the target's region is refused before anything starts, naming
the quota that limits it (a capped run would report figures for a rate nobody asked for); polling
stays within a share of DescribeExecution's refill. Throttled calls are retried with backoff by
botocore's standard retry mode; the ones still throttled are counted, not hidden.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from harness.errors import UnusableInputError
from harness.ops.execution import TERMINAL_STATUSES, ExecutionResult, WorkflowTarget, read_execution
from harness.ops.quotas import RateLimit, polling_rate, start_rate_limits

NOT_FINISHED = "NOT_FINISHED"

# (started, finished, planned): for a progress bar.
LoadProgress = Callable[[int, int, int], None]


class LoadRateError(UnusableInputError):
    """The rate asked for is above what a Step Functions quota allows (StartExecution, StateTransition)."""


def check_rate(rate: float, limits: Sequence[RateLimit]) -> None:
    """Refuse a start rate above the lowest limit, naming the quota behind it."""
    lowest = min(limits, key=lambda limit: limit.max_rate)
    if rate > lowest.max_rate:
        raise LoadRateError(
            f"{rate:g} executions/s is above the {lowest.quota} quota's {lowest.max_rate:g}/s "
            f"({lowest.why}): lower --rate, or pass your account's own quota "
            "(--max-start-rate, --max-transition-rate)"
        )


@dataclass
class LoadReport:
    target: str
    rate: float  # executions per second asked for
    duration: float  # seconds of starting
    planned: int
    started: int = 0
    start_errors: Counter[str] = field(default_factory=Counter)  # e.g. ThrottlingException
    outcomes: Counter[str] = field(default_factory=Counter)  # SUCCEEDED, FAILED: <error>, NOT_FINISHED
    latencies: list[float] = field(default_factory=list)  # seconds, finished executions only
    start_seconds: float = 0.0  # first start to last start
    wall_seconds: float = 0.0  # first start to the last execution's end (or the drain timeout)
    describe_per_second: float = 0.0  # the polling budget used (within DescribeExecution's quota)
    executions: dict[str, str] = field(default_factory=dict, repr=False)  # ARN -> S3 key, as started

    @property
    def achieved_rate(self) -> float:
        return (self.started - 1) / self.start_seconds if self.started > 1 and self.start_seconds > 0 else 0.0

    def percentiles(self) -> dict[str, float | None]:
        if not self.latencies:
            return {"p50": None, "p95": None, "p99": None}
        p50, p95, p99 = np.percentile(np.array(self.latencies), [50, 95, 99])
        return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "rate": self.rate,
            "duration": self.duration,
            "planned": self.planned,
            "started": self.started,
            "achieved_rate": round(self.achieved_rate, 3),
            "start_errors": dict(self.start_errors),
            "outcomes": dict(sorted(self.outcomes.items())),
            "latency_seconds": {
                k: (round(v, 3) if v is not None else None) for k, v in self.percentiles().items()
            },
            "finished": len(self.latencies),
            "wall_seconds": round(self.wall_seconds, 3),
            "describe_per_second": round(self.describe_per_second, 3),
        }


def outcome_of(described: dict[str, Any]) -> str:
    """SUCCEEDED, or the status with the execution's error: FAILED: THRESHOLD_CONFIDENCE_NOT_MET."""
    status = str(described["status"])
    if status == "SUCCEEDED":
        return status
    return f"{status}: {described.get('error') or '-'}"


def run_load(
    target: WorkflowTarget,
    keys: Sequence[str],
    *,
    rate: float,
    duration: float | None = None,
    target_name: str = "local",
    region: str | None = None,
    max_start_rate: float | None = None,
    max_transition_rate: float | None = None,
    describe_per_second: float | None = None,
    drain_timeout: float = 300.0,
    progress: LoadProgress | None = None,
    count: int | None = None,
) -> LoadReport:
    """Start executions on `keys` (round robin) at `rate` per second for `duration` seconds (or `count`
    executions, whatever the duration), wait for them."""
    if not keys:
        raise ValueError("no images to send")
    if count is not None:
        if count <= 0:
            raise LoadRateError("count must be positive")
        duration = count / rate if rate > 0 else 0.0
    if duration is None:
        raise ValueError("give a duration or a count")
    if rate <= 0 or duration <= 0:
        raise LoadRateError("rate and duration must be positive")
    check_rate(
        rate,
        start_rate_limits(
            region, start_execution_refill=max_start_rate, state_transition_refill=max_transition_rate
        ),
    )
    describe_per_second = polling_rate(region, describe_per_second)
    planned = planned_starts(rate, duration, count)
    report = LoadReport(
        target=target_name,
        rate=rate,
        duration=duration,
        planned=planned,
        describe_per_second=describe_per_second,
    )
    pending: dict[str, float] = {}  # execution ARN -> when it was started (monotonic)
    lock = threading.Lock()
    starting_done = threading.Event()
    poller = threading.Thread(
        target=_poll,
        args=(target, pending, lock, starting_done, report, describe_per_second, drain_timeout, progress),
        name="scones-load-poller",
        daemon=True,
    )
    poller.start()
    first = last = time.monotonic()
    for index in range(planned):
        due = first + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        key = keys[index % len(keys)]
        try:
            arn = target.start({"image_data": "", "s3_bucket": target.bucket, "s3_key": key})
        except ClientError as exc:
            report.start_errors[exc.response.get("Error", {}).get("Code", "ClientError")] += 1
            continue
        last = time.monotonic()
        with lock:
            pending[arn] = last
            report.started += 1
            report.executions[arn] = key
        if progress is not None:
            progress(report.started, len(report.latencies), planned)
    report.start_seconds = last - first
    starting_done.set()
    poller.join()
    report.wall_seconds = time.monotonic() - first
    return report


def planned_starts(rate: float, duration: float, count: int | None = None) -> int:
    """How many executions a run starts: `count`, or `rate` per second for `duration` seconds (at least 1)."""
    return count if count is not None else max(1, int(rate * duration))


def read_results(target: WorkflowTarget, execution_arns: Sequence[str]) -> list[ExecutionResult]:
    """Each execution as DescribeExecution and its history tell it now (finished or not)."""
    return [
        read_execution(target.sfn, target.sfn.describe_execution(executionArn=arn)) for arn in execution_arns
    ]


def _poll(
    target: WorkflowTarget,
    pending: dict[str, float],
    lock: threading.Lock,
    starting_done: threading.Event,
    report: LoadReport,
    describe_per_second: float,
    drain_timeout: float,
    progress: LoadProgress | None,
) -> None:
    """Describe pending executions, at most `describe_per_second` calls, until none is left."""
    interval = 1.0 / describe_per_second
    drain_deadline: float | None = None
    while True:
        with lock:
            arns = list(pending)
        if starting_done.is_set():
            if not arns:
                return
            if drain_deadline is None:
                drain_deadline = time.monotonic() + drain_timeout
            elif time.monotonic() > drain_deadline:
                with lock:
                    report.outcomes[NOT_FINISHED] += len(pending)
                    pending.clear()
                return
        if not arns:
            time.sleep(interval)
            continue
        for arn in arns:
            described = target.sfn.describe_execution(executionArn=arn)
            if described["status"] in TERMINAL_STATUSES:
                target.ended(described)  # locally: the template's rules (failure notifications)
                seconds = (described["stopDate"] - described["startDate"]).total_seconds()
                with lock:
                    del pending[arn]
                    report.outcomes[outcome_of(described)] += 1
                    report.latencies.append(seconds)
                if progress is not None:
                    progress(report.started, len(report.latencies), report.planned)
            time.sleep(interval)
