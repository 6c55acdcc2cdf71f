"""One execution of a state machine, wherever it ran: the target interface that run, batch and load use
(LocalWorkflow on moto, DeployedStack on AWS), the result read from DescribeExecution and the history,
and the limits and names both sides share."""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from harness.errors import UnusableInputError

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
MAX_STATE_PAYLOAD_BYTES = 256 * 1024  # a Step Functions state's input or output, and an execution's input
# The state machines' logical ids in template.yaml; locally each state machine is named after its id.
MAIN_STATE_MACHINE_NAME = "ImageClassificationStateMachine"
BATCH_STATE_MACHINE_NAME = "BatchClassificationStateMachine"


class ExecutionInputTooLargeError(UnusableInputError):
    """StartExecution refuses input over 256 KB; so does the harness."""


@dataclass
class StateTiming:
    name: str
    seconds: float


@dataclass
class ExecutionResult:
    """One execution, as `describe_execution` and its history tell it."""

    execution_arn: str
    status: str
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    seconds: float
    states: list[StateTiming] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def message(self) -> str | None:
        """The cause's errorMessage when the cause is a Lambda error payload, else the cause itself."""
        if not self.cause:
            return None
        try:
            parsed = json.loads(self.cause)
        except json.JSONDecodeError:
            return self.cause
        return str(parsed.get("errorMessage", self.cause)) if isinstance(parsed, dict) else self.cause

    def state_output(self, state_name: str) -> dict[str, Any] | None:
        """What a state passed on, e.g. ClassifyImage's classification of an image the filter then stopped."""
        for event in reversed(self.history):
            details = event.get("stateExitedEventDetails")
            if details and details["name"] == state_name and details.get("output"):
                output = json.loads(details["output"])
                return output if isinstance(output, dict) else None
        return None

    def attempts(self, state_name: str) -> int:
        """How many times a Task state called its resource (1 + retries), from the history."""
        scheduled = 0
        current = None
        for event in self.history:
            details = event.get("stateEnteredEventDetails")
            if details:
                current = details["name"]
            if event["type"] in ("TaskScheduled", "LambdaFunctionScheduled") and current == state_name:
                scheduled += 1
        return scheduled


class WorkflowTarget(Protocol):
    """What run, batch and load need: LocalWorkflow on moto, or harness.ops.deployed.DeployedStack on AWS."""

    bucket: str
    s3: Any
    sfn: Any
    state_machine_arn: str
    state_machine_arns: dict[str, str]

    def upload(self, data: bytes, key: str) -> str: ...

    def start(self, execution_input: dict[str, Any] | str) -> str: ...

    def wait(self, execution_arn: str, timeout_seconds: float = ...) -> ExecutionResult: ...

    def run(self, key: str, *, image_data: str = "") -> ExecutionResult: ...

    def ended(self, described: dict[str, Any]) -> None:
        """An execution reached a terminal state (describe_execution's answer): what AWS does then."""
        ...

    def segments(self, trace_id: str) -> list[dict[str, Any]]:
        """An X-Ray trace's segments, put together (none when nothing was traced)."""
        ...


class StartsExecutions(ABC):
    """`start` and `run`, written once for both targets: each brings its own `sfn` client, bucket, state
    machine and `wait` (moto needs polling that yields; AWS, polling within the API's quota)."""

    sfn: Any
    bucket: str
    state_machine_arn: str
    execution_name_prefix = "scones"

    def start(self, execution_input: dict[str, Any] | str, state_machine_arn: str | None = None) -> str:
        """StartExecution, refusing input over 256 KB as AWS does; returns the execution's ARN."""
        text = execution_input if isinstance(execution_input, str) else json.dumps(execution_input)
        if len(text.encode()) > MAX_STATE_PAYLOAD_BYTES:
            raise ExecutionInputTooLargeError(
                f"execution input of {len(text.encode()):,} bytes exceeds {MAX_STATE_PAYLOAD_BYTES:,} bytes"
            )
        started = self.sfn.start_execution(
            stateMachineArn=state_machine_arn or self.state_machine_arn,
            name=f"{self.execution_name_prefix}-{uuid.uuid4().hex[:16]}",
            input=text,
        )
        return str(started["executionArn"])

    @abstractmethod
    def wait(self, execution_arn: str, timeout_seconds: float = 300.0) -> ExecutionResult:
        """Poll DescribeExecution until the execution ends or the timeout passes."""

    def run(self, key: str, *, image_data: str = "") -> ExecutionResult:
        """One execution with the original course's input shape."""
        return self.wait(self.start({"image_data": image_data, "s3_bucket": self.bucket, "s3_key": key}))


def read_execution(sfn: Any, described: dict[str, Any]) -> ExecutionResult:
    """An ExecutionResult from DescribeExecution's answer and the whole execution history."""
    execution_arn = described["executionArn"]
    history: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        history.extend(page["events"])
    stopped = described.get("stopDate") or datetime.now(described["startDate"].tzinfo)
    output = described.get("output")
    return ExecutionResult(
        execution_arn=execution_arn,
        status=described["status"],
        input=json.loads(described.get("input") or "{}"),
        output=json.loads(output) if output else None,
        error=described.get("error"),
        cause=described.get("cause"),
        seconds=(stopped - described["startDate"]).total_seconds(),
        states=_state_timings(history),
        history=history,
    )


def _state_timings(history: list[dict[str, Any]]) -> list[StateTiming]:
    timings: list[StateTiming] = []
    entered: dict[str, datetime] = {}
    for event in history:
        if "stateEnteredEventDetails" in event:
            entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
        elif "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"]["name"]
            if name in entered:
                timings.append(StateTiming(name, (event["timestamp"] - entered.pop(name)).total_seconds()))
    # A state that failed has no exit event: time it to the execution's last event.
    if history:
        for name, start in entered.items():
            timings.append(StateTiming(name, (history[-1]["timestamp"] - start).total_seconds()))
    return timings
