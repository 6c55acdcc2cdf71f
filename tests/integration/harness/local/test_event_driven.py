"""An upload starts the workflow through the template's rule; duplicates are classified once; results
are published on the results bus."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from harness.local.eventbridge import matches
from harness.local.workflow import LocalWorkflow
from tests.helpers import PROJECT_ROOT, StubModel, received, subscribe_to_results

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
    assert result.input["s3_key"] == "incoming/new bike.png" and result.input["etag"]
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
