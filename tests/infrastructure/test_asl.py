"""Assertions on statemachine/image_classification.asl.json: its graph, its error handling, statelint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TRANSIENT_LAMBDA_ERRORS = {
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
DUMMY_ARN = "arn:aws:lambda:us-east-1:123456789012:function:{name}"


def machines(definition: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """The top-level machine and every nested one (Parallel branches, Map processors), with a path."""
    yield path or "<root>", definition
    for name, state in definition.get("States", {}).items():
        for index, branch in enumerate(state.get("Branches", [])):
            yield from machines(branch, f"{path}/{name}[{index}]")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from machines(processor, f"{path}/{name}")


def all_states(definition: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for where, machine in machines(definition):
        for name, state in machine["States"].items():
            yield where, name, state


def transitions(state: dict[str, Any]) -> list[str]:
    """Every state name a state can hand control to."""
    targets = [state["Next"]] if "Next" in state else []
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    targets += [choice["Next"] for choice in state.get("Choices", []) if "Next" in choice]
    if "Default" in state:
        targets.append(state["Default"])
    return targets


def is_terminal(state: dict[str, Any]) -> bool:
    return state["Type"] in ("Succeed", "Fail") or state.get("End") is True


def test_start_state_exists(asl: dict[str, Any]) -> None:
    # Given each (nested) machine / When StartAt is looked up / Then it names one of its states
    for where, machine in machines(asl):
        assert machine["StartAt"] in machine["States"], where


def test_every_transition_target_exists(asl: dict[str, Any]) -> None:
    # Given every Next, Default and Catch target
    for where, machine in machines(asl):
        for name, state in machine["States"].items():
            # When it is looked up in its own machine
            # Then the state exists (cfn-lint and SAM do not check this)
            for target in transitions(state):
                assert target in machine["States"], f"{where}/{name} -> {target!r}, which does not exist"


def test_no_state_is_unreachable(asl: dict[str, Any]) -> None:
    # Given each (nested) machine
    for where, machine in machines(asl):
        # When the states reachable from StartAt are walked
        reached, pending = set(), [machine["StartAt"]]
        while pending:
            name = pending.pop()
            if name not in reached:
                reached.add(name)
                pending.extend(transitions(machine["States"][name]))
        # Then every state is on some path
        unreachable = set(machine["States"]) - reached
        assert not unreachable, f"{where}: unreachable {sorted(unreachable)}"


def test_every_task_has_a_timeout(asl: dict[str, Any]) -> None:
    # Given every Task / When its timeout is read / Then a hung call cannot hold the execution for a year
    for where, name, state in all_states(asl):
        if state["Type"] == "Task":
            assert state.get("TimeoutSeconds") or state.get("TimeoutSecondsPath"), f"{where}/{name}"


def is_lambda_task(state: dict[str, Any]) -> bool:
    return state["Type"] == "Task" and ":lambda:" in str(state.get("Resource", ""))


def test_every_task_retries_something(asl: dict[str, Any]) -> None:
    # Given every Task (Lambda, SQS...) / Then transient failures of its service get another try
    for where, name, state in all_states(asl):
        if state["Type"] == "Task":
            assert state.get("Retry"), f"{where}/{name} has no Retry"


def test_every_lambda_task_retries_transient_lambda_errors(asl: dict[str, Any]) -> None:
    # Given every Lambda Task
    for where, name, state in all_states(asl):
        if not is_lambda_task(state):
            continue
        # When its retriers' error lists are read
        retried = [set(retrier["ErrorEquals"]) for retrier in state.get("Retry", [])]
        # Then one retrier covers all of Lambda's transient service errors, with an exponential backoff
        covering = [
            retrier
            for retrier, errors in zip(state.get("Retry", []), retried, strict=True)
            if errors >= TRANSIENT_LAMBDA_ERRORS or "States.ALL" in errors
        ]
        assert covering, f"{where}/{name} does not retry {sorted(TRANSIENT_LAMBDA_ERRORS)}"
        assert covering[0].get("MaxAttempts", 3) >= 1
        assert covering[0].get("BackoffRate", 2.0) >= 1.0


def test_every_task_catches_what_its_retries_do_not_fix(asl: dict[str, Any]) -> None:
    # Given every Task / When its catchers are read
    # Then a States.ALL catcher sends any remaining error to a named end instead of an anonymous failure
    for where, name, state in all_states(asl):
        if state["Type"] == "Task":
            caught = {error for catcher in state.get("Catch", []) for error in catcher["ErrorEquals"]}
            assert "States.ALL" in caught, f"{where}/{name} has no States.ALL catcher"


def test_states_all_comes_last_in_retry_and_catch(asl: dict[str, Any]) -> None:
    # Given every Retry and Catch list / When States.ALL appears
    # Then it is alone in the last entry (Step Functions rejects it anywhere else)
    for where, name, state in all_states(asl):
        for field in ("Retry", "Catch"):
            entries = state.get(field, [])
            for index, entry in enumerate(entries):
                if "States.ALL" in entry["ErrorEquals"]:
                    assert entry["ErrorEquals"] == ["States.ALL"], f"{where}/{name}.{field}[{index}]"
                    assert index == len(entries) - 1, f"{where}/{name}.{field}[{index}]"


def test_every_path_ends_in_succeed_or_a_named_fail(asl: dict[str, Any]) -> None:
    # Given every terminal state of the top-level machine
    terminals = {name: state for name, state in asl["States"].items() if is_terminal(state)}
    assert any(state["Type"] == "Succeed" for state in terminals.values())
    for name, state in terminals.items():
        # When its type is read
        # Then it is Succeed, or a Fail that names its error (statically, or from the caught error)
        assert state["Type"] in ("Succeed", "Fail"), f"{name} ends the execution as a {state['Type']}"
        if state["Type"] == "Fail":
            assert state.get("Error") or state.get("ErrorPath"), f"Fail state {name} names no error"


def test_fail_states_read_what_their_catchers_wrote(asl: dict[str, Any]) -> None:
    # Given every catcher that leads to a Fail state reading ErrorPath/CausePath
    for where, machine in machines(asl):
        for name, state in machine["States"].items():
            for catcher in state.get("Catch", []):
                target = machine["States"][catcher["Next"]]
                if target["Type"] != "Fail":
                    continue
                for path_field in ("ErrorPath", "CausePath"):
                    path = target.get(path_field)
                    if not path:
                        continue
                    # When the Fail state's path is compared with where the catcher put the error
                    # (or where an earlier catcher put an earlier error, which a catcher writing
                    # elsewhere leaves in place: FilterInferences -> KeepForReview -> ... -> the Fail)
                    result_path = catcher.get("ResultPath", "$")
                    upstream = [
                        c.get("ResultPath", "$")
                        for other in machine["States"].values()
                        for c in other.get("Catch", [])
                        if c.get("ResultPath", "$") != result_path
                    ]
                    # Then the path reads inside an error output (Error and Cause), not elsewhere
                    prefixes = [f"{p}." if p != "$" else "$." for p in [result_path, *upstream]]
                    where_next = f"{where}/{name} -> {catcher['Next']}"
                    assert any(path.startswith(prefix) for prefix in prefixes), (
                        f"{where_next}: caught into {result_path}, but {path_field} reads {path}"
                    )


def test_threshold_failure_keeps_the_original_error_name(asl: dict[str, Any]) -> None:
    # Given the Fail states / When their static error names are read
    errors = {state.get("Error") for state in asl["States"].values() if state["Type"] == "Fail"}
    # Then the low-confidence outcome is still THRESHOLD_CONFIDENCE_NOT_MET, as in the original workflow
    assert "THRESHOLD_CONFIDENCE_NOT_MET" in errors


def test_lambda_tasks_pass_the_whole_input_and_unwrap_the_payload(asl: dict[str, Any]) -> None:
    # Given every lambda:invoke Task
    for where, name, state in all_states(asl):
        if state["Type"] == "Task" and state["Resource"] == "arn:aws:states:::lambda:invoke":
            # When its parameters and output path are read
            # Then the function gets the state input and the next state gets the function's result
            assert PLACEHOLDER.fullmatch(state["Parameters"]["FunctionName"]), f"{where}/{name}"
            if "ResultPath" in state and state["ResultPath"] is None:
                # A side step (ReleaseDelivery): its result is dropped and the state passes on unchanged
                assert "OutputPath" not in state, f"{where}/{name}"
                continue
            assert state["Parameters"]["Payload.$"] == "$", f"{where}/{name}"
            assert state.get("OutputPath") == "$.Payload", f"{where}/{name}"


def _statelint() -> str | None:
    beside_python = Path(sys.executable).with_name("statelint")
    return str(beside_python) if beside_python.exists() else shutil.which("statelint")


def test_statelint_finds_no_problem(asl_text: str, tmp_path: Path) -> None:
    # Given the definition with each ${...} placeholder replaced by a function ARN, as CloudFormation will
    statelint = _statelint()
    if statelint is None:
        pytest.skip("statelint is not installed (pip install -e '.[dev]')")
    definition = PLACEHOLDER.sub(lambda match: DUMMY_ARN.format(name=match.group(1)), asl_text)
    json.loads(definition)  # still valid JSON
    path = tmp_path / "image_classification.asl.json"
    path.write_text(definition, encoding="utf-8")
    # When statelint checks it
    result = subprocess.run([statelint, str(path)], capture_output=True, text=True, timeout=60, check=False)
    # Then it reports no problem
    assert result.returncode == 0, result.stdout + result.stderr
