"""Faults injected at the local endpoint and in the Lambda service, counted through the real ASL's Retry."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.local.endpoint import EndpointFault
from harness.local.workflow import LocalWorkflow
from harness.ops.execution import ExecutionResult
from harness.reliability.cases import FAULT_CASES, FaultCase, apply_fault
from scones_common.exceptions import InvalidImageError
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


class FlakyModel(StubModel):
    """A model whose first `failures` calls raise `error` inside the container's handler."""

    def __init__(self, error: Exception, failures: int) -> None:
        super().__init__()
        self.error, self.failures = error, failures

    def predict(self, body: bytes, content_type: str) -> list[float]:
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        return super().predict(body, content_type)


def test_a_container_crash_is_retried_until_the_model_answers(tmp_path: Path, bicycle_png: bytes) -> None:
    # Given a model whose handler crashes twice (the container answers 500: ModelError, OriginalStatusCode)
    model = FlakyModel(RuntimeError("CUDA error: device-side assert"), failures=2)
    with LocalWorkflow(model=model, log_dir=tmp_path) as workflow:
        assert workflow.endpoint is not None
        # When an image runs through the real definition
        result = run_once(workflow, bicycle_png)
        errors = [call.error for call in workflow.endpoint.calls]
    # Then ClassifyImage is retried past both crashes and the image is classified
    assert result.status == "SUCCEEDED", (result.error, result.message)
    assert result.attempts("ClassifyImage") == 3
    assert errors == ["ModelError", "ModelError", None]


def test_a_request_the_container_refuses_fails_at_once(tmp_path: Path, bicycle_png: bytes) -> None:
    # Given a model that finds the bytes are no image (its handler answers 400 as ModelError)
    model = FlakyModel(InvalidImageError("cannot identify image file"), failures=10)
    with LocalWorkflow(model=model, log_dir=tmp_path) as workflow:
        # When an image runs through the real definition
        result = run_once(workflow, bicycle_png)
    # Then it fails with the permanent EndpointError, without a retry, naming the container's answer
    assert (result.status, result.error) == ("FAILED", "EndpointError")
    assert result.attempts("ClassifyImage") == 1
    assert "client error (400)" in (result.message or "") and "cannot identify image file" in (
        result.message or ""
    )


def test_the_local_model_error_has_the_runtimes_shape(tmp_path: Path, bicycle_png: bytes) -> None:
    # Given a crashing model behind the local endpoint
    import boto3
    from botocore.exceptions import ClientError

    with LocalWorkflow(model=FlakyModel(RuntimeError("boom"), failures=1), log_dir=tmp_path) as workflow:
        assert workflow.endpoint is not None
        runtime = boto3.client("sagemaker-runtime")
        # When it is invoked with the SDK, as the classify function does
        with pytest.raises(ClientError) as raised:
            runtime.invoke_endpoint(
                EndpointName=workflow.endpoint.name, ContentType="image/png", Body=bicycle_png
            )
    # Then botocore raises ModelError (424) with the members of the runtime's ModelError shape
    error = raised.value
    assert type(error).__name__ == "ModelError"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error.response["OriginalStatusCode"] == 500
    assert error.response["OriginalMessage"] == "RuntimeError: boom"
    assert error.response["LogStreamArn"].startswith("arn:aws:logs:")
    assert "Received server error (500)" in error.response["Error"]["Message"]
