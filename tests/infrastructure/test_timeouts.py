"""Timeouts as AWS applies them: each function's own Timeout fires before its Task's TimeoutSeconds, and
both end in a recorded state with a reason, in both state machines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import props_of

MACHINES = {
    "ImageClassificationStateMachine": "image_classification.asl.json",
    "BatchClassificationStateMachine": "batch_classification.asl.json",
}
# Time between Lambda's own timeout and the Task's: the invoke itself (queueing, a cold start's init).
MARGIN_SECONDS = 5
FUNCTION_ARN = re.compile(r"^\$\{(\w+Function)Arn\}$")


def definition(project_root: Path, logical_id: str) -> dict[str, Any]:
    return dict(json.loads((project_root / "statemachine" / MACHINES[logical_id]).read_text()))


def states(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, the machine it is in) of every state, nested processors included."""
    for name, state in machine["States"].items():
        yield name, state, machine
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from states(processor)


def lambda_tasks(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], str]]:
    for name, state, where in states(machine):
        match = FUNCTION_ARN.match(str(state.get("Parameters", {}).get("FunctionName", "")))
        if state["Type"] == "Task" and match:
            yield name, state, where, match.group(1)


def function_timeout(template: dict[str, Any], logical_id: str) -> int:
    props = props_of(template["Resources"], logical_id)
    return int(props.get("Timeout", template["Globals"]["Function"].get("Timeout", 3)))


@pytest.mark.parametrize("machine_id", list(MACHINES))
def test_each_function_times_out_before_its_task(
    template: dict[str, Any], project_root: Path, machine_id: str
) -> None:
    # Given every Task that invokes one of the stack's functions
    tasks = list(lambda_tasks(definition(project_root, machine_id)))
    assert tasks
    for name, state, _, function in tasks:
        # When its TimeoutSeconds is compared with the function's Timeout
        # Then Lambda stops the function first (Sandbox.Timedout, with "Task timed out after N seconds")
        # and TimeoutSeconds only backs it up for an invoke that hangs in Lambda itself
        assert state["TimeoutSeconds"] >= function_timeout(template, function) + MARGIN_SECONDS, name


@pytest.mark.parametrize("machine_id", list(MACHINES))
def test_each_lambda_task_retries_a_lambda_client_timeout(project_root: Path, machine_id: str) -> None:
    # Given every Lambda Task / When its retriers are read
    # Then Lambda.ClientExecutionTimeoutException is retried with Lambda's other transient service
    # errors (Step Functions developer guide, "Handle Lambda service exceptions")
    for name, state, _, _ in lambda_tasks(definition(project_root, machine_id)):
        retried = [set(r["ErrorEquals"]) for r in state["Retry"]]
        transient = {"Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException"}
        assert any(transient <= errors for errors in retried), name
        # and neither timeout is retried: a step that ran out of time would only do so again
        assert not any(e & {"Sandbox.Timedout", "States.Timeout"} for e in retried), name


def test_main_timeouts_end_as_step_timed_out_with_the_reason(project_root: Path) -> None:
    # Given the main definition
    main = definition(project_root, "ImageClassificationStateMachine")
    states_ = main["States"]
    # When every Lambda Task's Catch, then the Choice it goes to, are followed for each timeout error
    for name, state, _, _ in lambda_tasks(main):
        (catcher,) = [c for c in state["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
        # ReleaseDelivery's own failure is kept beside the error it carries, which it passes on
        assert catcher["ResultPath"] == ("$.release_error" if name == "ReleaseDelivery" else "$")
        choice = states_[catcher["Next"]]
        while choice["Type"] == "Task":  # ReleaseDelivery: ResultPath null, so the error passes through
            assert choice["ResultPath"] is None
            choice = states_[choice["Next"]]
        for error, cause in (("Sandbox.Timedout", "c"), ("States.Timeout", ""), ("States.Timeout", None)):
            target = first_match(choice, {"Error": error, **({} if cause is None else {"Cause": cause})})
            fail = states_[target]
            # Then it ends in a Fail state named StepTimedOut whose cause names the error
            assert (fail["Type"], fail["Error"]) == ("Fail", "StepTimedOut"), (name, error)
            assert "$.Cause" in fail["CausePath"] or "$.Error" in fail["CausePath"], (name, error)
            if error == "Sandbox.Timedout":
                assert "$.Cause" in fail["CausePath"]  # "Task timed out after N seconds"


def test_batch_timeouts_are_recorded_outcomes(project_root: Path) -> None:
    # Given the batch's child workflow
    batch = definition(project_root, "BatchClassificationStateMachine")
    child = batch["States"]["ClassifyEachImage"]["ItemProcessor"]["States"]
    # When a Lambda Task of it fails with any error, timeouts included, and the Catch is followed
    for name, state, where, _ in lambda_tasks(batch):
        if where["States"] is not child:
            continue
        (catcher,) = [c for c in state["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
        target, error_at = child[catcher["Next"]], catcher["ResultPath"]
        if target["Type"] == "Pass" and target.get("Next"):  # the error moved out of the image's place
            assert target["Parameters"]["error.$"] == error_at, name
            target, error_at = child[target["Next"]], "$.error"
        # Then the image's outcome is FAILED with the error's name (Sandbox.Timedout, States.Timeout)
        assert target["Parameters"]["status"] == "FAILED", name
        assert target["Parameters"]["error.$"] == f"{error_at}.Error", name


def first_match(choice: dict[str, Any], value: dict[str, Any]) -> str:
    """The state a Choice goes to for `value` (the rules used here: StringEquals, StringMatches, IsPresent,
    And, Or)."""

    def holds(rule: dict[str, Any]) -> bool:
        if "And" in rule:
            return all(holds(r) for r in rule["And"])
        if "Or" in rule:
            return any(holds(r) for r in rule["Or"])
        key = rule["Variable"].removeprefix("$.")
        if "IsPresent" in rule:
            return (key in value) == rule["IsPresent"]
        if "StringEquals" in rule:
            return value.get(key) == rule["StringEquals"]
        if "StringMatches" in rule:
            pattern = re.escape(rule["StringMatches"]).replace(r"\*", ".*")
            return re.fullmatch(pattern, str(value.get(key, ""))) is not None
        raise AssertionError(f"the test does not know rule {rule}")

    for rule in choice["Choices"]:
        if holds(rule):
            return str(rule["Next"])
    return str(choice["Default"])
