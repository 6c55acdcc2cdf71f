"""An upload starts the workflow through the template's rule; duplicates are classified once; results
are published on the results bus."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from harness.local.eventbridge import matches, object_created
from harness.local.workflow import LocalWorkflow
from tests.helpers import PROJECT_ROOT, StubModel, png_bytes, received, subscribe_to_results

pytestmark = pytest.mark.integration
S3_EVENT = json.loads((PROJECT_ROOT / "events" / "s3_object_created.json").read_text())


def upload_rule(workflow: LocalWorkflow) -> dict[str, Any]:
    return workflow.events.rules["ImageUploadedRule"]["EventPattern"]


def with_detail(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(S3_EVENT)
    for path, value in changes.items():
        node = event
        *parents, last = path.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return event


def test_rule_matches_the_sample_s3_event(stub_workflow: LocalWorkflow) -> None:
    assert matches(upload_rule(stub_workflow), S3_EVENT)


@pytest.mark.parametrize(
    "event",
    [
        with_detail(detail__object__key="elsewhere/bicycle.png"),
        with_detail(detail__object__key="incoming/notes.txt"),
        with_detail(detail__object__key="incoming/animation.gif"),
        with_detail(detail__bucket={"name": "someone-elses-bucket"}),
        with_detail(**{"detail-type": "Object Deleted"}),
        with_detail(source="aws.ec2"),
    ],
    ids=["other-prefix", "not-an-image-suffix", "gif", "other-bucket", "deleted", "other-source"],
)
def test_rule_rejects_other_events(stub_workflow: LocalWorkflow, event: dict[str, Any]) -> None:
    assert not matches(upload_rule(stub_workflow), event)


def test_upload_under_the_prefix_starts_one_execution(
    stub_workflow: LocalWorkflow, bicycle_png: bytes
) -> None:
    # When an image is uploaded under incoming/ (and another elsewhere)
    (result,) = stub_workflow.drop(bicycle_png, "incoming/new bike.png")
    assert stub_workflow.drop(bicycle_png, "archive/old.png") == []
    # Then the rule's input transformer produced the workflow's input, and it classified
    assert result.status == "SUCCEEDED", result.message
    assert result.input["s3_key"] == "incoming/new+bike.png" and result.input["etag"]  # as S3 encodes it
    assert result.output is not None and result.output["s3_key"] == "incoming/new bike.png"
    assert result.input["version_id"]


def test_duplicate_delivery_calls_the_endpoint_once_and_publishes_once(
    tmp_path: Path, bicycle_png: bytes
) -> None:
    model = StubModel()
    with LocalWorkflow(model=model, log_dir=tmp_path) as workflow:
        downstream = subscribe_to_results(workflow)
        # Given one upload, delivered twice by EventBridge (at-least-once delivery)
        put = workflow.s3.put_object(Bucket=workflow.bucket, Key="incoming/twice.png", Body=bicycle_png)
        event = with_detail(
            detail__bucket={"name": workflow.bucket},
            detail__object={
                "key": "incoming/twice.png",
                "size": len(bicycle_png),
                "etag": put["ETag"].strip('"'),
                "version-id": put["VersionId"],
            },
        )
        (first,) = workflow.redeliver(event)
        (second,) = workflow.redeliver(event)
        events = received(workflow, downstream)
    # Then the first classified, the second stopped at once, and only one event went downstream
    assert first.status == "SUCCEEDED" and first.states[-1].name == "ImageClassified"
    assert second.status == "SUCCEEDED" and second.states[-1].name == "DuplicateDeliveryIgnored"
    assert len(model.requests) == 1
    assert [e["detail-type"] for e in events] == ["ImageClassified"]
    detail = events[0]["detail"]
    assert (detail["s3_key"], detail["label"], detail["confidence"]) == (
        "incoming/twice.png",
        "bicycle",
        0.97,
    )
    assert detail["execution_arn"] == first.execution_arn


def test_new_version_of_the_same_key_is_classified_again(
    stub_workflow: LocalWorkflow, bicycle_png: bytes
) -> None:
    (first,) = stub_workflow.drop(bicycle_png, "incoming/same-key.png")
    (second,) = stub_workflow.drop(bicycle_png + b"\x00", "incoming/same-key.png")
    assert [first.states[-1].name, second.states[-1].name] == ["ImageClassified", "ImageClassified"]


def test_low_confidence_publishes_a_review_event(tmp_path: Path, bicycle_png: bytes) -> None:
    with LocalWorkflow(model=StubModel([0.6, 0.4]), log_dir=tmp_path) as workflow:
        downstream = subscribe_to_results(workflow)
        (result,) = workflow.drop(bicycle_png, "incoming/unsure.png")
        events = received(workflow, downstream)
    assert result.error == "THRESHOLD_CONFIDENCE_NOT_MET"
    assert [e["detail-type"] for e in events] == ["ImageNeedsReview"]
    assert "below the threshold" in events[0]["detail"]["reason"]


def test_upload_to_an_unversioned_bucket_starts_and_succeeds(tmp_path: Path, bicycle_png: bytes) -> None:
    # Given a bucket without versioning (ExistingBucketName), whose events carry no version-id
    with LocalWorkflow(model=StubModel(), log_dir=tmp_path, versioned_bucket=False) as workflow:
        # When an image is uploaded under the prefix, and EventBridge delivers its event twice
        put = workflow.s3.put_object(Bucket=workflow.bucket, Key="incoming/unversioned.png", Body=bicycle_png)
        assert "VersionId" not in put
        event = object_created(
            workflow.bucket, "incoming/unversioned.png", len(bicycle_png), put["ETag"].strip('"'), None
        )
        (result,) = workflow.redeliver(event)
        (again,) = workflow.redeliver(event)
    # Then the rule's input is JSON that says "no version", the execution classifies the image once
    assert result.input["version_id"] == "" and result.input["etag"]
    assert result.status == "SUCCEEDED" and result.states[-1].name == "ImageClassified", result.message
    assert again.states[-1].name == "DuplicateDeliveryIgnored"


@pytest.mark.parametrize(
    "key",
    [
        "incoming/red flower.png",
        "incoming/a+b.png",
        "incoming/100%.png",
        "incoming/vélo électrique.png",
        "incoming/a%20b.png",
    ],
    ids=["space", "plus", "percent", "unicode", "literal-%20"],
)
def test_upload_with_special_characters_reaches_the_object(
    stub_workflow: LocalWorkflow, bicycle_png: bytes, key: str
) -> None:
    # When an image whose key needs URL encoding is uploaded under the prefix
    (result,) = stub_workflow.drop(bicycle_png, key)
    # Then the event carried the key encoded, and the workflow read and published the real key
    assert result.input["s3_key"] != key and result.input["s3_key_encoding"] == "url"
    assert result.status == "SUCCEEDED", result.message
    serialized = result.state_output("SerializeImageData")
    assert serialized is not None and serialized["s3_key"] == key
    assert result.output is not None and result.output["s3_key"] == key


def test_an_encoded_key_never_reads_the_object_its_encoding_names(
    stub_workflow: LocalWorkflow, bicycle_png: bytes
) -> None:
    # Given an object "incoming/a+b.png" already in the bucket (uploaded without an event)
    stub_workflow.upload(png_bytes(size=(40, 40)), "incoming/a+b.png")
    # When "incoming/a b.png" is uploaded: its event says "incoming/a+b.png"
    (result,) = stub_workflow.drop(bicycle_png, "incoming/a b.png")
    # Then the workflow reads "incoming/a b.png", not the other object
    serialized = result.state_output("SerializeImageData")
    assert serialized is not None
    assert serialized["s3_key"] == "incoming/a b.png" and serialized["original_bytes"] == len(bicycle_png)
