"""The real ASL on moto, the real handlers, a stubbed or the real local endpoint."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from harness.local.endpoint import EndpointFault
from harness.local.workflow import LocalWorkflow
from harness.samples import bundled_images, large_photo
from scones_common.constants import DEFAULT_CONFIDENCE_THRESHOLD
from tests.helpers import StubModel, png_bytes

pytestmark = pytest.mark.integration


def test_original_course_event_returns_inferences_as_a_list(
    stub_workflow: LocalWorkflow, bicycle_png: bytes
) -> None:
    # Given the course's event shape and an image in the bucket
    key = stub_workflow.upload(bicycle_png, "test/bicycle_s_000513.png")
    # When the state machine runs
    result = stub_workflow.run(key, image_data="")
    # Then it succeeds and the output holds the contract's fields
    assert result.status == "SUCCEEDED", result.cause
    assert result.output is not None
    assert result.output["inferences"] == [0.97, 0.03]
    assert result.output["label"] == "bicycle"
    assert result.output["confidence"] == 0.97
    assert result.output["s3_key"] == key
    assert [s.name for s in result.states] == [
        "SerializeImageData",
        "SkipDuplicateDelivery",
        "ClassifyImage",
        "FilterInferences",
        "PublishClassification",
        "ImageClassified",
    ]


def test_low_confidence_fails_with_the_original_error_name(tmp_path, bicycle_png: bytes) -> None:
    with LocalWorkflow(model=StubModel([0.6, 0.4]), log_dir=tmp_path) as workflow:
        result = workflow.run(workflow.upload(bicycle_png, "test/unsure.png"))
    assert result.status == "FAILED"
    assert result.error == "THRESHOLD_CONFIDENCE_NOT_MET"
    assert "confidence 0.6000" in (result.message or "")
    assert f"threshold {DEFAULT_CONFIDENCE_THRESHOLD:.4f}" in (result.message or "")


def test_threshold_parameter_reaches_the_filter_function(tmp_path, bicycle_png: bytes) -> None:
    with LocalWorkflow(model=StubModel([0.6, 0.4]), threshold=0.5, log_dir=tmp_path) as workflow:
        result = workflow.run(workflow.upload(bicycle_png, "test/unsure.png"))
    assert result.status == "SUCCEEDED"
    assert result.output is not None and result.output["threshold"] == 0.5


def test_missing_object_fails_with_its_own_name(stub_workflow: LocalWorkflow) -> None:
    result = stub_workflow.run("test/nowhere.png")
    assert (result.status, result.error) == ("FAILED", "ImageNotFoundError")
    assert "nowhere.png" in (result.message or "")


def test_missing_bucket_fails_with_its_own_name(stub_workflow: LocalWorkflow) -> None:
    result = stub_workflow.wait(stub_workflow.start({"s3_bucket": "no-such-bucket-here", "s3_key": "a.png"}))
    assert (result.status, result.error) == ("FAILED", "ImageNotFoundError")
    assert "no such bucket" in (result.message or "")


@pytest.mark.parametrize(
    ("data", "expected_error"),
    [
        (b"", "InvalidImageError"),
        (b"<html><body>not an image</body></html>", "InvalidImageError"),
        (png_bytes()[:60], "InvalidImageError"),
    ],
    ids=["empty", "html-named-png", "truncated-png"],
)
def test_undecodable_bytes_fail_with_their_own_name(
    stub_workflow: LocalWorkflow, stub_model: StubModel, data: bytes, expected_error: str
) -> None:
    result = stub_workflow.run(stub_workflow.upload(data, "test/broken.png"))
    assert (result.status, result.error) == ("FAILED", expected_error)
    assert stub_model.requests == []  # the endpoint never saw it


def test_malformed_input_fails_with_a_named_error(stub_workflow: LocalWorkflow) -> None:
    result = stub_workflow.wait(stub_workflow.start({"s3_bucket": stub_workflow.bucket, "s3_key": ["a"]}))
    assert (result.status, result.error) == ("FAILED", "InvalidInputError")


def test_large_photo_is_shrunk_to_fit_a_state(stub_workflow: LocalWorkflow, stub_model: StubModel) -> None:
    # Given a 4000x3000 JPEG of several MB (far over the 256 KB a state may carry)
    photo = large_photo(bundled_images()[0])
    assert len(photo.data) > 2_000_000
    # When it runs through the workflow
    result = stub_workflow.run(stub_workflow.upload(photo.data, "test/photo.jpg"))
    # Then it classifies, and no Lambda result came near the state limit
    assert result.status == "SUCCEEDED", result.message
    content_type, size = stub_model.requests[-1]
    assert content_type == "image/jpeg" and size <= 150_000
    sizes = [
        len(json.dumps(event.get("taskSucceededEventDetails", {}).get("output", "")))
        for event in result.history
    ]
    assert max(sizes) < 256 * 1024


def test_jpeg_named_png_is_sent_as_jpeg(stub_workflow: LocalWorkflow, stub_model: StubModel) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 10)).save(buffer, format="JPEG")
    result = stub_workflow.run(stub_workflow.upload(buffer.getvalue(), "test/really-a-jpeg.png"))
    assert result.status == "SUCCEEDED"
    assert stub_model.requests[-1][0] == "image/jpeg"


def test_a_manual_run_takes_its_key_literally(stub_workflow: LocalWorkflow, bicycle_png: bytes) -> None:
    # Given an object whose real key has "+" and "%" (a manual run's input is not URL-encoded)
    stub_workflow.upload(bicycle_png, "test/my+bike+%C3%A9.png")
    result = stub_workflow.run("test/my+bike+%C3%A9.png")
    # Then that object is read, under that key (event keys: test_event_driven.py)
    assert result.status == "SUCCEEDED", result.message
    assert result.output is not None and result.output["s3_key"] == "test/my+bike+%C3%A9.png"


def test_permanent_endpoint_error_fails_at_once(stub_workflow: LocalWorkflow, bicycle_png: bytes) -> None:
    assert stub_workflow.endpoint is not None
    stub_workflow.endpoint.inject("ModelError400")
    result = stub_workflow.run(stub_workflow.upload(bicycle_png, "test/a.png"))
    assert (result.status, result.error) == ("FAILED", "EndpointError")
    assert "ModelError" in (result.message or "")
    assert result.attempts("ClassifyImage") == 1


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[0.5]", b"[NaN, 0.5]", b"[-0.2, 1.2]", b"[0.2, 0.2]"],
    ids=["not-json", "wrong-length", "nan", "negative", "sum-not-one"],
)
def test_malformed_model_output_is_named(
    stub_workflow: LocalWorkflow, bicycle_png: bytes, body: bytes
) -> None:
    assert stub_workflow.endpoint is not None
    stub_workflow.endpoint.inject(EndpointFault(body=body))
    result = stub_workflow.run(stub_workflow.upload(bicycle_png, "test/a.png"))
    assert (result.status, result.error) == ("FAILED", "InvalidModelOutputError")


def test_real_model_classifies_the_bundled_samples(tmp_path) -> None:
    # Given the committed default model behind the local endpoint
    samples = bundled_images()
    with LocalWorkflow(threshold=0.0, log_dir=tmp_path) as workflow:
        results = [(s, workflow.run(workflow.upload(s.data, f"test/{s.name}"))) for s in samples]
    # Then every execution succeeds with probabilities that sum to 1, and most labels are right
    for _, result in results:
        assert result.status == "SUCCEEDED", result.message
        assert result.output is not None and abs(sum(result.output["inferences"]) - 1.0) < 1e-3
    correct = sum(1 for s, r in results if r.output and r.output["label"] == s.expected)
    assert correct >= len(samples) - 1


def test_transient_endpoint_errors_are_retried_then_succeed(
    stub_workflow: LocalWorkflow, bicycle_png: bytes
) -> None:
    # Given an endpoint that throttles twice, then answers
    assert stub_workflow.endpoint is not None
    stub_workflow.endpoint.inject("ThrottlingException", times=2)
    # When an image runs
    result = stub_workflow.run(stub_workflow.upload(bicycle_png, "test/a.png"))
    # Then the ASL's Retry absorbed both failures: three attempts in the history
    assert result.status == "SUCCEEDED", result.message
    assert result.attempts("ClassifyImage") == 3


def test_endpoint_that_stays_unavailable_fails_after_the_retries(
    stub_workflow: LocalWorkflow, bicycle_png: bytes
) -> None:
    assert stub_workflow.endpoint is not None
    stub_workflow.endpoint.inject("ServiceUnavailable", times=10)
    result = stub_workflow.run(stub_workflow.upload(bicycle_png, "test/a.png"))
    assert (result.status, result.error) == ("FAILED", "EndpointUnavailableError")
    assert result.attempts("ClassifyImage") == 5  # the first call and MaxAttempts 4


def test_local_retry_delays_are_capped_but_attempts_are_not(stub_workflow: LocalWorkflow) -> None:
    deployed = json.loads(stub_workflow.stack.state_machine.definition())
    local = json.loads(stub_workflow.definition())
    for name, state in deployed["States"].items():
        for mine, theirs in zip(local["States"][name].get("Retry", []), state.get("Retry", []), strict=True):
            assert (
                mine["MaxAttempts"] == theirs["MaxAttempts"] and mine["BackoffRate"] == theirs["BackoffRate"]
            )
            assert mine["IntervalSeconds"] <= 1 and mine["MaxDelaySeconds"] <= 1


def test_low_confidence_image_is_kept_for_review(tmp_path, bicycle_png: bytes) -> None:
    # Given a classification below the threshold
    with LocalWorkflow(model=StubModel([0.6, 0.4]), log_dir=tmp_path) as workflow:
        key = workflow.upload(bicycle_png, "test/unsure.png")
        result = workflow.run(key)
        # When the review queue is read
        queue_url = workflow.sqs.get_queue_url(QueueName="ReviewQueue")["QueueUrl"]
        messages = workflow.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    # Then the execution still fails with the original error, and the image waits for a person
    assert result.error == "THRESHOLD_CONFIDENCE_NOT_MET"
    assert len(messages) == 1
    review = json.loads(messages[0]["Body"])
    assert (review["s3_bucket"], review["s3_key"], review["label"]) == (workflow.bucket, key, "bicycle")
    assert review["confidence"] == 0.6 and review["execution_arn"] == result.execution_arn
    assert "below the threshold" in review["reason"]
