"""What happened to each state of one execution, read from its event history as the console reads it:
entered or not, attempts, retries with their delays, failures caught or not, input and output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.ops.view.machine import Machine

SUCCEEDED, FAILED, CAUGHT, RETRIED, NOT_ENTERED, RUNNING = (
    "succeeded",
    "failed",
    "caught",
    "retried",
    "not-entered",
    "running",
)
IN_CHILDREN = "in-child-executions"  # a Map's ItemProcessor states, on the parent's page
NOT_RECORDED = "not-recorded"  # a child execution whose history no one kept (moto keeps none)
STATUSES = (SUCCEEDED, RETRIED, CAUGHT, FAILED, RUNNING, NOT_ENTERED, IN_CHILDREN, NOT_RECORDED)

_SCHEDULED = {"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled", "MapRunStarted"}
_SUCCEEDED = {"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded", "MapRunSucceeded"}
_FAILED = {
    "TaskFailed",
    "TaskTimedOut",
    "TaskStartFailed",
    "TaskSubmitFailed",
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "LambdaFunctionStartFailed",
    "LambdaFunctionScheduleFailed",
    "ActivityFailed",
    "ActivityTimedOut",
    "ActivityScheduleFailed",
    "MapRunFailed",
    "MapRunAborted",
    "MapStateFailed",
}
_EXECUTION_ENDED = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}


@dataclass
class Failure:
    error: str
    cause: str
    at: float  # seconds since the execution started
    retried_after: float | None = None  # seconds until the next attempt was scheduled, if one was


@dataclass
class StateRun:
    """One state in one execution."""

    name: str
    type: str
    entered: int = 0
    attempts: int = 0
    exited: bool = False
    last_attempt_failed: bool = False
    failures: list[Failure] = field(default_factory=list)
    input: str | None = None
    output: str | None = None
    entered_at: float | None = None
    exited_at: float | None = None
    status: str = NOT_ENTERED

    @property
    def note(self) -> str:
        """What the graph writes under the state's name."""
        if self.status in (NOT_ENTERED, IN_CHILDREN, NOT_RECORDED):
            return self.status.replace("-", " ")
        if self.attempts > 1:
            return f"{self.status}, {self.attempts} attempts"
        return self.status


@dataclass
class HistoryRow:
    """One line of the console's event history table."""

    id: int
    type: str
    state: str
    since_start: float
    details: dict[str, Any]


@dataclass
class ExecutionPath:
    states: dict[str, StateRun]
    rows: list[HistoryRow]
    transitions: list[tuple[str, str, bool]]  # (from state, to state, through a Catch), in order
    ended: str | None  # the last event's type when the execution ended


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def read_path(
    machine: Machine, history: list[dict[str, Any]], *, top_level_only: bool = True
) -> ExecutionPath:
    """Each state's run from the history of one execution of `machine`."""
    states = {
        name: StateRun(name, state.type)
        for name, state in machine.states.items()
        if not (top_level_only and state.parent)
    }
    for name, state in machine.states.items():
        if top_level_only and state.parent:
            states[name] = StateRun(name, state.type, status=IN_CHILDREN)
    events = sorted(history, key=lambda e: int(e["id"]))
    start: datetime | None = events[0]["timestamp"] if events else None
    rows: list[HistoryRow] = []
    transitions: list[tuple[str, str, bool]] = []
    current: StateRun | None = None
    previous_name: str | None = None
    ended: str | None = None
    for event in events:
        kind = str(event["type"])
        details = _details(event)
        at = (event["timestamp"] - start).total_seconds() if start else 0.0
        if kind.endswith("StateEntered"):
            name = details["name"]
            current = states.setdefault(name, StateRun(name, kind.removesuffix("StateEntered")))
            current.entered += 1
            current.input = details.get("input")
            current.entered_at = at
            if previous_name is not None:
                transitions.append((previous_name, name, states[previous_name].last_attempt_failed))
            previous_name = name
        rows.append(HistoryRow(int(event["id"]), kind, current.name if current else "", at, details))
        if current is None:
            continue
        if kind.endswith("StateExited"):
            current.exited = True
            current.output = details.get("output")
            current.exited_at = at
        elif kind in _SCHEDULED:
            if current.failures and current.last_attempt_failed:
                current.failures[-1].retried_after = at - current.failures[-1].at
            current.attempts += 1
            current.last_attempt_failed = False
        elif kind in _SUCCEEDED:
            current.last_attempt_failed = False
        elif kind in _FAILED:
            current.failures.append(
                Failure(str(details.get("error", kind)), str(details.get("cause", "")), at)
            )
            current.last_attempt_failed = True
        elif kind in _EXECUTION_ENDED:
            ended = kind
    for run in states.values():
        run.status = _status(run, run.name == previous_name, ended)
    return ExecutionPath(states, rows, transitions, ended)


def _status(run: StateRun, last_entered: bool, ended: str | None) -> str:
    if run.status == IN_CHILDREN:
        return IN_CHILDREN
    if run.entered == 0:
        return NOT_ENTERED
    if run.type == "Fail":
        return FAILED
    if run.last_attempt_failed:
        # The execution went on to another state: a Catch took the failure.
        return FAILED if last_entered else CAUGHT
    if last_entered and ended is None:
        return RUNNING
    if last_entered and ended in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
        return FAILED
    return RETRIED if run.failures else SUCCEEDED


def elide(value: Any, key: str = "") -> Any:
    """A JSON value with base64 image data replaced by its length; JSON held in strings is opened too."""
    if isinstance(value, dict):
        return {k: elide(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [elide(v) for v in value]
    if isinstance(value, str):
        if (key == "image_data" and len(value) > 64) or (len(value) >= 1024 and _looks_base64(value)):
            return f"<base64 image data: {len(value):,} characters>"
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and len(stripped) > 1:
            try:
                return elide(json.loads(stripped))
            except json.JSONDecodeError:
                return value
    return value


def _looks_base64(text: str) -> bool:
    head = text[:2048]
    return all(c.isalnum() or c in "+/=\n" for c in head)


def pretty(text_or_value: Any) -> str:
    """Indented JSON with image data elided; text that is not JSON as it is."""
    value = elide(text_or_value)
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
