"""Data capture at the local endpoint: one SageMaker capture record per successful InvokeEndpoint."""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from harness.local.capture import DataCaptureWriter
from harness.local.workflow import LocalWorkflow
from tests.helpers import StubModel, png_bytes

pytestmark = pytest.mark.integration

KEY = re.compile(
    r"^data_capture/(?P<endpoint>[^/]+)/AllTraffic/(?P<hour>\d{4}/\d{2}/\d{2}/\d{2})/"
    r"(?P<mm>\d{2})-(?P<ss>\d{2})-(?P<ms>\d{3})-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jsonl$"
)


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (20, 120, 200)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def capture_objects(s3: Any, bucket: str) -> dict[str, list[dict[str, Any]]]:
    """Every capture file under data_capture/ and its records, by key."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="data_capture/").get("Contents", [])
    files = {}
    for item in listed:
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
        files[item["Key"]] = [json.loads(line) for line in body.splitlines() if line.strip()]
    return files


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_each_successful_invocation_is_one_record_in_sagemakers_layout(stub_workflow: LocalWorkflow) -> None:
    # Given a PNG and a JPEG in the bucket
    images = {"test/red.png": png_bytes(), "test/blue.jpg": jpeg_bytes()}
    assert stub_workflow.capture is not None and stub_workflow.endpoint is not None
    before = datetime.now(UTC)
    # When both run through the state machine and the capture is flushed
    for key, data in images.items():
        assert stub_workflow.run(stub_workflow.upload(data, key)).status == "SUCCEEDED"
    stub_workflow.capture.flush()
    after = datetime.now(UTC)
    # Then S3 holds one record per invocation, under PREFIX/ENDPOINT/AllTraffic/YYYY/MM/DD/HH/
    files = capture_objects(stub_workflow.s3, stub_workflow.bucket)
    records = [(key, record) for key, lines in files.items() for record in lines]
    assert len(records) == len(images) == len(stub_workflow.endpoint.calls)
    sent = {}
    for key, record in records:
        match = KEY.match(key)
        assert match, key
        assert match["endpoint"] == stub_workflow.endpoint.name
        # with the fields and encodings SageMaker writes
        assert set(record) == {"captureData", "eventMetadata", "eventVersion"}
        assert record["eventVersion"] == "0"
        request, response = record["captureData"]["endpointInput"], record["captureData"]["endpointOutput"]
        assert set(request) == set(response) == {"observedContentType", "mode", "data", "encoding"}
        assert (request["mode"], request["encoding"]) == ("INPUT", "BASE64")
        assert (response["mode"], response["encoding"]) == ("OUTPUT", "JSON")
        assert response["observedContentType"] == "application/json"
        assert json.loads(response["data"]) == [0.97, 0.03]
        metadata = record["eventMetadata"]
        uuid.UUID(metadata["eventId"])
        when = parse_time(metadata["inferenceTime"])
        assert metadata["inferenceTime"].endswith("Z")
        assert before - timedelta(seconds=1) <= when <= after
        assert match["hour"] == f"{when:%Y/%m/%d/%H}"
        sent[request["observedContentType"]] = base64.b64decode(request["data"])
    # and the request bytes round-trip exactly, with the content type sent to the endpoint
    assert sent == {"image/png": images["test/red.png"], "image/jpeg": images["test/blue.jpg"]}
    assert len({record["eventMetadata"]["eventId"] for _, record in records}) == len(records)


def test_failed_invocations_are_not_captured(stub_workflow: LocalWorkflow, bicycle_png: bytes) -> None:
    # Given a ModelError (permanent) for the first image, then a throttle the ASL retries past
    endpoint, capture = stub_workflow.endpoint, stub_workflow.capture
    assert endpoint is not None and capture is not None
    endpoint.inject("ModelError400")
    failed = stub_workflow.run(stub_workflow.upload(bicycle_png, "test/model-error.png"))
    endpoint.inject("ThrottlingException")
    retried = stub_workflow.run(stub_workflow.upload(bicycle_png, "test/throttled.png"))
    # When the capture is flushed
    capture.flush()
    # Then only the successful invocation was captured, once
    assert failed.status == "FAILED" and retried.status == "SUCCEEDED", (failed.error, retried.error)
    succeeded = [call for call in endpoint.calls if call.error is None]
    assert len(endpoint.calls) >= 3 and len(succeeded) == 1
    records = [r for lines in capture_objects(stub_workflow.s3, stub_workflow.bucket).values() for r in lines]
    assert len(records) == 1
    assert base64.b64decode(records[0]["captureData"]["endpointInput"]["data"]) == bicycle_png


def test_records_left_in_the_buffer_are_written_when_the_workflow_closes(tmp_path: Path) -> None:
    # Given a workflow whose writer batches 100 records per file
    with LocalWorkflow(model=StubModel(), log_dir=tmp_path) as workflow:
        capture = workflow.capture
        assert capture is not None
        workflow.run(workflow.upload(png_bytes(), "test/one.png"))
        # When one image has run, its record is still buffered
        assert capture.pending == 1 and capture.written_keys == []
    # Then closing the workflow wrote it to S3 (before moto went away)
    assert capture.pending == 0 and capture.records_written == 1
    assert len(capture.written_keys) == 1 and KEY.match(capture.written_keys[0])


class Clock:
    """A clock that moves on by `step` every time it is read."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now, self.step = start, step

    def __call__(self) -> datetime:
        now, self.now = self.now, self.now + self.step
        return now


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="capture")
        yield client


def test_writer_batches_per_hour_and_loses_no_record(s3: Any) -> None:
    # Given a writer of 2 records per file and a clock crossing 11:00 after 3 records
    clock = Clock(datetime(2024, 5, 1, 10, 59, 57, 250_000, tzinfo=UTC), timedelta(seconds=1))
    writer = DataCaptureWriter(s3, "capture", "ep", records_per_file=2, clock=clock)
    # When 5 requests are captured and the writer is flushed
    for n in range(5):
        writer(f"request {n}".encode(), "image/png", f"[0.{n}]".encode(), "application/json")
    assert writer.pending == 1  # 10:59:59 waits for a second record in its hour
    writer.flush()
    # Then each hour's records are in that hour's folder, 2 per file at most, named by their first record
    files = capture_objects(s3, "capture")
    hours = {key: KEY.match(key) for key in files}
    assert all(hours.values()), list(files)
    by_hour = sorted(
        (m["hour"], f"{m['mm']}:{m['ss']}.{m['ms']}", len(files[k])) for k, m in hours.items() if m
    )
    assert by_hour == [
        ("2024/05/01/10", "59:57.250", 2),
        ("2024/05/01/10", "59:59.250", 1),
        ("2024/05/01/11", "00:00.250", 2),
    ]
    requests = sorted(
        base64.b64decode(r["captureData"]["endpointInput"]["data"]) for v in files.values() for r in v
    )
    assert requests == [f"request {n}".encode() for n in range(5)]
    assert writer.records_written == 5 and writer.pending == 0


def test_a_failed_write_keeps_its_records_for_the_next_flush(s3: Any) -> None:
    # Given an S3 client that refuses the first write
    class FlakyS3:
        def __init__(self) -> None:
            self.failures = 1

        def put_object(self, **params: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("S3 unreachable")
            return s3.put_object(**params)

    writer = DataCaptureWriter(FlakyS3(), "capture", "ep", records_per_file=1)
    # When a record is captured (its write fails, quietly: capture never fails an inference)
    writer(b"first", "image/png", b"[1.0]", "application/json")
    assert writer.pending == 1 and writer.written_keys == []
    writer(b"second", "image/png", b"[1.0]", "application/json")
    writer.flush()
    # Then both records reached S3
    records = [r for lines in capture_objects(s3, "capture").values() for r in lines]
    assert sorted(base64.b64decode(r["captureData"]["endpointInput"]["data"]) for r in records) == [
        b"first",
        b"second",
    ]
