"""SageMaker data capture for the local endpoint: the same JSON Lines files, keys and fields in S3."""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

DATA_CAPTURE_PREFIX = "data_capture"  # model.sagemaker_jobs.endpoint.DATA_CAPTURE_PREFIX, as deployed
VARIANT_NAME = "AllTraffic"
# The deployed endpoint's CaptureContentTypeHeader lists application/json as JSON; SageMaker stores
# every other content type (the PNG and JPEG requests) base64-encoded.
JSON_CONTENT_TYPES = frozenset({"application/json"})
RECORDS_PER_FILE = 100

_log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def inference_time(when: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, e.g. 2024-05-01T12:30:45.123Z."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _payload(data: bytes, content_type: str, mode: str) -> dict[str, str]:
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in JSON_CONTENT_TYPES:
        try:
            return {
                "observedContentType": content_type,
                "mode": mode,
                "data": data.decode("utf-8"),
                "encoding": "JSON",
            }
        except UnicodeDecodeError:
            pass  # not text after all: stored as bytes, like any other type
    return {
        "observedContentType": content_type,
        "mode": mode,
        "data": base64.b64encode(data).decode("ascii"),
        "encoding": "BASE64",
    }


def capture_record(
    request: bytes,
    request_content_type: str,
    response: bytes,
    response_content_type: str,
    *,
    when: datetime,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One line of a capture file: the request, the response and when it happened."""
    return {
        "captureData": {
            "endpointInput": _payload(request, request_content_type, "INPUT"),
            "endpointOutput": _payload(response, response_content_type, "OUTPUT"),
        },
        "eventMetadata": {"eventId": event_id or str(uuid.uuid4()), "inferenceTime": inference_time(when)},
        "eventVersion": "0",
    }


def capture_key(prefix: str, endpoint_name: str, started: datetime, file_id: str | None = None) -> str:
    """PREFIX/ENDPOINT/AllTraffic/YYYY/MM/DD/HH/MM-SS-mmm-<uuid>.jsonl, named as SageMaker names them."""
    started = started.astimezone(UTC)
    name = f"{started:%M-%S}-{started.microsecond // 1000:03d}-{file_id or uuid.uuid4()}.jsonl"
    return f"{prefix.strip('/')}/{endpoint_name}/{VARIANT_NAME}/{started:%Y/%m/%d/%H}/{name}"


class DataCaptureWriter:
    """Buffers capture records per hour and writes each hour's records as a JSON Lines object.

    Called by LocalEndpoint after each successful invocation. A file is written when an hour holds
    `records_per_file` records, and `flush()` (LocalWorkflow's exit) writes whatever is left. As on
    SageMaker, capture never fails an inference: a write that fails keeps its records for the next
    flush and is logged.
    """

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        endpoint_name: str,
        *,
        prefix: str = DATA_CAPTURE_PREFIX,
        records_per_file: int = RECORDS_PER_FILE,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if records_per_file < 1:
            raise ValueError("records_per_file must be at least 1")
        self.s3 = s3_client
        self.bucket = bucket
        self.endpoint_name = endpoint_name
        self.prefix = prefix
        self.records_per_file = records_per_file
        self.clock = clock
        self.written_keys: list[str] = []
        self.records_written = 0
        # hour -> (time of the hour's first buffered record, its serialised lines)
        self._pending: dict[str, tuple[datetime, list[str]]] = {}
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(len(lines) for _, lines in self._pending.values())

    def __call__(
        self, request: bytes, request_content_type: str, response: bytes, response_content_type: str
    ) -> None:
        when = self.clock()
        line = json.dumps(
            capture_record(request, request_content_type, response, response_content_type, when=when),
            separators=(",", ":"),
        )
        hour = when.astimezone(UTC).strftime("%Y%m%d%H")
        with self._lock:
            _, lines = self._pending.setdefault(hour, (when, []))
            lines.append(line)
            full = len(lines) >= self.records_per_file
        if full:
            try:
                self._write_hour(hour)
            except Exception:
                _log.warning("data capture: writing %s records failed; kept for the next flush", hour)

    def flush(self) -> list[str]:
        """Write every buffered record; returns the keys written. Raises if S3 refuses a write."""
        with self._lock:
            hours = sorted(self._pending)
        return [key for hour in hours if (key := self._write_hour(hour))]

    def _write_hour(self, hour: str) -> str | None:
        with self._lock:
            entry = self._pending.pop(hour, None)
        if entry is None:
            return None
        started, lines = entry
        key = capture_key(self.prefix, self.endpoint_name, started)
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=("\n".join(lines) + "\n").encode("utf-8"),
                ContentType="application/jsonl",
            )
        except Exception:
            with self._lock:
                # Put the records back in front of any that arrived meanwhile.
                _, newer = self._pending.pop(hour, (started, []))
                self._pending[hour] = (started, lines + newer)
            raise
        with self._lock:
            self.written_keys.append(key)
            self.records_written += len(lines)
        return key
