"""A failed execution releases its delivery record: the object version, delivered again, is classified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.local.endpoint import EndpointFault
from harness.local.eventbridge import object_created
from harness.local.workflow import LocalWorkflow
from tests.helpers import StubModel

pytestmark = pytest.mark.integration


def upload_event(workflow: LocalWorkflow, image: bytes, key: str) -> dict[str, Any]:
    """Upload one object version and return the S3 event EventBridge would deliver (maybe twice) for it."""
    put = workflow.s3.put_object(Bucket=workflow.bucket, Key=key, Body=image)
    return object_created(workflow.bucket, key, len(image), put["ETag"].strip('"'), put.get("VersionId"))


def test_a_redelivery_after_a_failed_classification_is_classified(tmp_path: Path, bicycle_png: bytes) -> None:
    model = StubModel()
    with LocalWorkflow(model=model, log_dir=tmp_path) as workflow:
        assert workflow.endpoint is not None
        # Given an upload whose first delivery fails at the endpoint (a permanent error, after serialize)
        event = upload_event(workflow, bicycle_png, "incoming/retry-me.png")
        workflow.endpoint.inject("ModelError400")
        (failed,) = workflow.redeliver(event)
        # When the same object version is delivered again (EventBridge's retry, or a person's)
        (again,) = workflow.redeliver(event)
    # Then the first ended with its own error, having released the delivery on the way
    assert (failed.status, failed.error) == ("FAILED", "EndpointError")
    assert [s.name for s in failed.states][-3:] == ["ReleaseDelivery", "NameTheFailure", "ImageNotClassified"]
    # and the second was classified, not skipped as a duplicate
    assert again.status == "SUCCEEDED" and again.states[-1].name == "ImageClassified", again.message
    assert len(model.requests) == 1


def test_a_redelivery_after_a_timed_out_step_is_classified(tmp_path: Path, bicycle_png: bytes) -> None:
    # Given classify's own Timeout shortened to 1 s and a model that takes 3 s the first time
    with LocalWorkflow(
        model=StubModel(), log_dir=tmp_path, function_timeouts={"ClassifyImageFunction": 1}
    ) as workflow:
        assert workflow.endpoint is not None
        event = upload_event(workflow, bicycle_png, "incoming/slow.png")
        workflow.endpoint.inject(EndpointFault(delay_seconds=3.0))
        (timed_out,) = workflow.redeliver(event)
        # When it is delivered again
        (again,) = workflow.redeliver(event)
    # Then the first still ends as StepTimedOut, and the second is classified
    assert (timed_out.status, timed_out.error) == ("FAILED", "StepTimedOut")
    assert "ReleaseDelivery" in [s.name for s in timed_out.states]
    assert again.status == "SUCCEEDED" and again.states[-1].name == "ImageClassified", again.message


def test_a_low_confidence_image_stays_recorded(tmp_path: Path, bicycle_png: bytes) -> None:
    # Given an image below the threshold: classified, and kept for review
    with LocalWorkflow(model=StubModel([0.6, 0.4]), log_dir=tmp_path) as workflow:
        event = upload_event(workflow, bicycle_png, "incoming/unsure.png")
        (first,) = workflow.redeliver(event)
        # When it is delivered again
        (again,) = workflow.redeliver(event)
    # Then the redelivery is a duplicate: one review request per image, not one per delivery
    assert first.error == "THRESHOLD_CONFIDENCE_NOT_MET"
    assert "ReleaseDelivery" not in [s.name for s in first.states]
    assert again.status == "SUCCEEDED" and again.states[-1].name == "DuplicateDeliveryIgnored"


def test_a_failure_to_release_does_not_hide_the_failure(tmp_path: Path, bicycle_png: bytes) -> None:
    # Given the endpoint failing for good and the release function unreachable (Lambda failing every time)
    with LocalWorkflow(model=StubModel(), log_dir=tmp_path) as workflow:
        assert workflow.endpoint is not None and workflow.hooks is not None
        release = workflow.stack.function_by_name("ReleaseDeliveryFunction").function_name
        workflow.hooks.inject_lambda_fault(release, "ServiceException", times=10)
        workflow.endpoint.inject("ModelError400")
        # When an upload runs
        (result,) = workflow.redeliver(upload_event(workflow, bicycle_png, "incoming/stuck.png"))
    # Then it still ends with the endpoint's error and its cause, after the release was retried
    assert (result.status, result.error) == ("FAILED", "EndpointError")
    assert "client error (400)" in (result.message or "")
    assert result.attempts("ReleaseDelivery") == 4


def test_a_manual_run_that_fails_has_nothing_to_release(
    stub_workflow: LocalWorkflow, bicycle_png: bytes
) -> None:
    # Given an execution started by hand (no etag: no delivery was recorded)
    assert stub_workflow.endpoint is not None
    stub_workflow.endpoint.inject("ModelError400")
    # When it fails after serialize
    result = stub_workflow.run(stub_workflow.upload(bicycle_png, "test/by-hand.png"))
    # Then it passes through the release, which finds nothing to do, and ends with its error
    assert (result.status, result.error) == ("FAILED", "EndpointError")
    payload, error = stub_workflow.invoke_function(
        "ReleaseDeliveryFunction", {"execution_input": {"s3_bucket": stub_workflow.bucket, "s3_key": "x.png"}}
    )
    assert error is None and payload == {
        "s3_bucket": stub_workflow.bucket,
        "s3_key": "x.png",
        "released": False,
    }
