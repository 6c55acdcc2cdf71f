"""Nothing is lost: every failed execution is announced on the topic, through the template's own rule."""

from __future__ import annotations

import json

import pytest

from harness.local.workflow import LocalWorkflow
from tests.helpers import received, subscribe_queue

pytestmark = pytest.mark.integration


def test_failed_execution_is_announced_with_error_cause_and_image(stub_workflow: LocalWorkflow) -> None:
    # Given an operator subscribed to the topic
    inbox = subscribe_queue(stub_workflow)
    # When an image that does not exist is run
    result = stub_workflow.run("test/missing.png")
    # Then one notification names the execution, the error, the cause and the image
    (notice,) = received(stub_workflow, inbox)
    assert notice["status"] == "FAILED" and notice["error"] == "ImageNotFoundError"
    assert notice["executionArn"] == result.execution_arn
    assert "missing.png" in notice["cause"]
    image = json.loads(notice["input"])
    assert (image["s3_bucket"], image["s3_key"]) == (stub_workflow.bucket, "test/missing.png")


def test_succeeded_execution_is_not_announced(stub_workflow: LocalWorkflow, bicycle_png: bytes) -> None:
    inbox = subscribe_queue(stub_workflow)
    result = stub_workflow.run(stub_workflow.upload(bicycle_png, "test/fine.png"))
    assert result.status == "SUCCEEDED"
    assert received(stub_workflow, inbox) == []


def test_failures_under_load_are_announced_as_well(stub_workflow: LocalWorkflow) -> None:
    from harness.ops.load import run_load

    inbox = subscribe_queue(stub_workflow)
    key = stub_workflow.upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "load/corrupt.png")
    report = run_load(stub_workflow, [key], rate=4, duration=0.5)
    assert report.outcomes == {"FAILED: InvalidImageError": 2}
    notices = received(stub_workflow, inbox)
    assert [n["error"] for n in notices] == ["InvalidImageError", "InvalidImageError"]
