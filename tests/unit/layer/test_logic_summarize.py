"""scones_common.logic.summarize on an in-memory result store: where files are read, what is unreadable.

The counting rules are in tests/unit/layer/test_summarize.py.
"""

from __future__ import annotations

import json
import re

import pytest

from scones_common.exceptions import BatchResultsUnreadableError
from scones_common.logic.summarize import summarize_batch
from scones_common.models import SummarizeBatchRequest
from tests.unit.layer.fakes import InMemoryResultStore

MANIFEST_BUCKET = "scones-manifests"
RESULTS_BUCKET = "scones-results"
MANIFEST = "batch/run-1/manifest.json"
RESULTS = "batch/run-1/SUCCEEDED_0.json"

REQUEST = SummarizeBatchRequest.model_validate(
    {"map_run_arn": "arn:run", "result_writer_details": {"Bucket": MANIFEST_BUCKET, "Key": MANIFEST}}
)


def manifest(files: dict[str, list[dict[str, str]]], destination: str | None = RESULTS_BUCKET) -> bytes:
    return json.dumps({"DestinationBucket": destination, "ResultFiles": files}).encode()


def executions(*outcomes: dict[str, object]) -> bytes:
    return json.dumps([{"Status": "SUCCEEDED", "Output": json.dumps(o)} for o in outcomes]).encode()


def test_result_files_are_read_from_the_manifests_destination_bucket() -> None:
    # Given a manifest in one bucket naming a result file in another
    results = InMemoryResultStore(
        {
            (MANIFEST_BUCKET, MANIFEST): manifest({"SUCCEEDED": [{"Key": RESULTS}]}),
            (RESULTS_BUCKET, RESULTS): executions(
                {"s3_key": "a.png", "status": "CLASSIFIED", "label": "bicycle", "confidence": 0.99}
            ),
        }
    )
    # When summarised
    summary = summarize_batch(REQUEST, results)
    # Then the manifest was read first, the result file from the destination bucket
    assert results.reads == [(MANIFEST_BUCKET, MANIFEST), (RESULTS_BUCKET, RESULTS)]
    assert (summary.total, summary.classified, summary.labels) == (1, 1, {"bicycle": 1})
    assert summary.manifest == f"s3://{MANIFEST_BUCKET}/{MANIFEST}"


def test_without_a_destination_bucket_result_files_are_in_the_manifests_bucket() -> None:
    results = InMemoryResultStore(
        {
            (MANIFEST_BUCKET, MANIFEST): manifest({"SUCCEEDED": [{"Key": RESULTS}]}, destination=None),
            (MANIFEST_BUCKET, RESULTS): executions({"s3_key": "b.txt", "status": "SKIPPED"}),
        }
    )
    assert summarize_batch(REQUEST, results).skipped == 1


def test_a_result_file_the_manifest_lists_but_the_store_lacks_is_the_named_error() -> None:
    results = InMemoryResultStore({(MANIFEST_BUCKET, MANIFEST): manifest({"SUCCEEDED": [{"Key": RESULTS}]})})
    with pytest.raises(
        BatchResultsUnreadableError, match=re.escape(f"s3://{RESULTS_BUCKET}/{RESULTS}: NoSuchKey")
    ):
        summarize_batch(REQUEST, results)


def test_a_result_file_that_is_not_an_array_of_executions_is_the_named_error() -> None:
    results = InMemoryResultStore(
        {
            (MANIFEST_BUCKET, MANIFEST): manifest({"SUCCEEDED": [{"Key": RESULTS}]}),
            (RESULTS_BUCKET, RESULTS): b'{"Status": "SUCCEEDED"}',
        }
    )
    with pytest.raises(BatchResultsUnreadableError, match="not a JSON array of executions"):
        summarize_batch(REQUEST, results)
