"""Faults injected at the local endpoint and in the Lambda service, counted through the real ASL's Retry."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.local.endpoint import EndpointFault
from harness.local.workflow import LocalWorkflow
from harness.ops.execution import ExecutionResult
from harness.reliability.cases import FAULT_CASES, FaultCase, apply_fault
from tests.helpers import StubModel

pytestmark = pytest.mark.integration


def run_once(workflow: LocalWorkflow, image: bytes) -> ExecutionResult:
    return workflow.run(workflow.upload(image, "test/fault.png"))


@pytest.mark.parametrize("case", FAULT_CASES, ids=[c.name for c in FAULT_CASES])
def test_fault_ends_as_catalogued(stub_workflow: LocalWorkflow, bicycle_png: bytes, case: FaultCase) -> None:
    # Given the fault injected for the next `times` calls (the endpoint's 60 s timeout shortened to 0.2 s)
    apply_fault(stub_workflow, case, invocation_timeout_seconds=0.2)
    # When an image runs through the real definition
    result = run_once(stub_workflow, bicycle_png)
    # Then it ends as catalogued, after exactly the catalogued number of attempts
    outcome = result.status if result.status == "SUCCEEDED" else result.error
    assert outcome == case.outcome, result.message
    assert result.attempts(case.state) == case.attempts
    if result.status != "SUCCEEDED":
        assert result.message


def test_function_past_its_own_timeout_ends_as_step_timed_out(tmp_path: Path, bicycle_png: bytes) -> None:
    # Given the real definition as deployed (ClassifyImage's TimeoutSeconds 75 s), classify_image's
    # Timeout shortened from 70 s to 1 s, and a model that takes 3 s to answer
    with LocalWorkflow(
        model=StubModel(), log_dir=tmp_path, function_timeouts={"ClassifyImageFunction": 1}
    ) as workflow:
        assert workflow.endpoint is not None
        workflow.endpoint.inject(EndpointFault(delay_seconds=3.0))
        result = run_once(workflow, bicycle_png)
    # Then, as on AWS, Lambda stops the function at its Timeout and reports Sandbox.Timedout, which the
    # definition ends as StepTimedOut with that reason, not as an unnamed failure
    assert (result.status, result.error) == ("FAILED", "StepTimedOut")
    assert "Sandbox.Timedout" in (result.cause or "")
    assert "Task timed out after 1.00 seconds" in (result.cause or "")
    # and it did so at the function's Timeout, not when the slow call came back
    assert result.attempts("ClassifyImage") == 1
    (classify,) = [t for t in result.states if t.name == "ClassifyImage"]
    assert 1.0 <= classify.seconds < 2.5
