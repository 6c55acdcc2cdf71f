"""summarize_batch's logic on in-memory result files: one test per rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scones_common.exceptions import BatchResultsUnreadableError
from scones_common.logic.summarize import EXAMPLES_PER_ERROR, UNNAMED_CHILD_FAILURE, summarize_batch
from scones_common.models import SummarizeBatchRequest
from tests.unit.layer.fakes import InMemoryResultStore

BUCKET = "scones-local-images"
MANIFEST = "batch-results/run-1/manifest.json"


def outcome(key: str, status: str, label: str | None = None, error: str | None = None) -> dict[str, Any]:
    confidence = 0.97 if status == "CLASSIFIED" else 0.6 if status == "LOW_CONFIDENCE" else None
    return {"s3_key": key, "status": status, "label": label, "confidence": confidence, "error": error}


def store(succeeded: list[dict[str, Any]], failed: list[dict[str, Any]] | None = None) -> dict[str, bytes]:
    objects = {
        "batch-results/run-1/SUCCEEDED_0.json": json.dumps(
            [
                {"Status": "SUCCEEDED", "Output": json.dumps(o), "Name": str(i)}
                for i, o in enumerate(succeeded)
            ]
        ).encode()
    }
    files: dict[str, list[dict[str, Any]]] = {
        "SUCCEEDED": [{"Key": "batch-results/run-1/SUCCEEDED_0.json"}],
        "FAILED": [],
        "PENDING": [],
    }
    if failed is not None:
        objects["batch-results/run-1/FAILED_0.json"] = json.dumps(failed).encode()
        files["FAILED"].append({"Key": "batch-results/run-1/FAILED_0.json"})
    objects[MANIFEST] = json.dumps(
        {"DestinationBucket": BUCKET, "MapRunArn": "arn", "ResultFiles": files}
    ).encode()
    return objects


def summarize(objects: dict[str, bytes]) -> dict[str, Any]:
    # Every object is in BUCKET: a read of any other bucket fails as a missing object would.
    results = InMemoryResultStore({(BUCKET, key): data for key, data in objects.items()})
    request = SummarizeBatchRequest.model_validate(
        {"map_run_arn": "arn", "result_writer_details": {"Bucket": BUCKET, "Key": MANIFEST}}
    )
    return summarize_batch(request, results).model_dump()


def test_counts_labels_low_confidence_failures_and_skips() -> None:
    # Given one outcome of each kind, two of one label / When summarised
    summary = summarize(
        store(
            [
                outcome("a.png", "CLASSIFIED", "bicycle"),
                outcome("b.png", "CLASSIFIED", "bicycle"),
                outcome("c.png", "CLASSIFIED", "motorcycle"),
                outcome("d.png", "LOW_CONFIDENCE", "motorcycle", "THRESHOLD_CONFIDENCE_NOT_MET"),
                outcome("e.png", "FAILED", error="InvalidImageError"),
                outcome("f.txt", "SKIPPED", error="NotAnImageKey"),
            ]
        )
    )
    # Then every count is there
    assert summary["total"] == 6
    assert summary["labels"] == {"bicycle": 2, "motorcycle": 1}
    assert summary["low_confidence_labels"] == {"motorcycle": 1}
    assert (summary["classified"], summary["low_confidence"], summary["failed"], summary["skipped"]) == (
        3,
        1,
        1,
        1,
    )
    assert summary["failures"] == {"InvalidImageError": 1}
    assert summary["failure_examples"] == {"InvalidImageError": ["e.png"]}


def test_a_failed_child_execution_counts_by_its_error_and_input_key() -> None:
    failed = [
        {"Status": "FAILED", "Error": "States.Timeout", "Input": json.dumps({"s3_key": "slow.png"})},
        {"Status": "FAILED", "Input": "{}", "Name": "child-2"},
    ]
    summary = summarize(store([], failed))
    assert summary["failed"] == 2 and summary["total"] == 2
    assert summary["failures"] == {"States.Timeout": 1, UNNAMED_CHILD_FAILURE: 1}
    assert summary["failure_examples"]["States.Timeout"] == ["slow.png"]


def test_examples_are_capped_per_error() -> None:
    summary = summarize(store([outcome(f"{i}.png", "FAILED", error="EndpointError") for i in range(20)]))
    assert summary["failures"] == {"EndpointError": 20}
    assert len(summary["failure_examples"]["EndpointError"]) == EXAMPLES_PER_ERROR


def test_a_missing_manifest_is_a_named_error() -> None:
    with pytest.raises(BatchResultsUnreadableError, match="NoSuchKey"):
        summarize({})


@pytest.mark.parametrize(
    "manifest",
    [b"not json", b"[]", json.dumps({"ResultFiles": {"SUCCEEDED": [{"Size": 3}]}}).encode()],
)
def test_a_manifest_that_is_not_one_is_a_named_error(manifest: bytes) -> None:
    with pytest.raises(BatchResultsUnreadableError):
        summarize({MANIFEST: manifest})


def test_an_output_that_is_not_an_outcome_is_a_named_error() -> None:
    objects = store([{"s3_key": "a.png", "status": "MAYBE"}])
    with pytest.raises(BatchResultsUnreadableError, match="not an outcome"):
        summarize(objects)


def test_the_request_needs_the_result_writer_details() -> None:
    from scones_common.exceptions import InvalidInputError
    from scones_common.models import parse_event

    with pytest.raises(InvalidInputError, match="result_writer_details"):
        parse_event(SummarizeBatchRequest, {"map_run_arn": "arn"})
