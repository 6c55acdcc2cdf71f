"""Read SageMaker data capture files (JSON Lines in S3): every record of every file under a prefix."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scones_common.exceptions import InvalidModelOutputError
from scones_common.formats import parse_probabilities

DEFAULT_PREFIX = "data_capture"
DEFAULT_CLASS_NAMES = ("bicycle", "motorcycle")  # the model's order, as CLASS_NAMES in template.yaml


@dataclass(frozen=True)
class CapturedInference:
    """One captured request and the endpoint's answer to it."""

    key: str  # the capture file it came from
    line: int  # 1-based line in that file
    endpoint: str
    event_id: str
    time: datetime
    input_content_type: str
    input_data: bytes
    output_content_type: str
    output_data: bytes
    probabilities: tuple[float, ...] | None  # None when the answer was not the algorithm's JSON array
    label: str | None
    confidence: float | None


@dataclass
class Capture:
    """Everything read under one prefix, oldest first, and what could not be read."""

    bucket: str
    prefix: str
    files: list[str] = field(default_factory=list)
    records: list[CapturedInference] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "key:line: why", for lines that were skipped


class CaptureFormatError(ValueError):
    """A capture line that is not a SageMaker data capture record."""


def capture_prefix(prefix: str, endpoint_name: str | None) -> str:
    """The S3 prefix to list: PREFIX/ or PREFIX/ENDPOINT/AllTraffic/... for one endpoint."""
    base = prefix.strip("/")
    parts = [base] if base else []
    if endpoint_name:
        parts.append(endpoint_name)
    return "/".join(parts) + "/" if parts else ""


def list_capture_files(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Every .jsonl key under the prefix, all pages of the listing, in key (= time) order."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(".jsonl"))
    return sorted(keys)


def parse_time(text: str) -> datetime:
    """inferenceTime: 2024-05-01T12:30:45Z or with fractional seconds; always UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def decode_payload(payload: dict[str, Any]) -> bytes:
    """The captured bytes of endpointInput or endpointOutput, whatever their encoding."""
    data = payload.get("data", "")
    if not isinstance(data, str):
        raise CaptureFormatError(f"data is {type(data).__name__}, not a string")
    encoding = str(payload.get("encoding", "BASE64")).upper()
    if encoding == "BASE64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise CaptureFormatError(f"data is not valid base64: {exc}") from None
    if encoding in ("JSON", "CSV"):
        return data.encode("utf-8")
    raise CaptureFormatError(f"unknown encoding {encoding!r}")


def endpoint_from_key(key: str) -> str:
    """PREFIX/ENDPOINT/VARIANT/YYYY/MM/DD/HH/file.jsonl: the endpoint is 7 parts from the end."""
    parts = key.split("/")
    return parts[-7] if len(parts) >= 7 else ""


def parse_record(
    line: str, *, key: str, line_number: int, class_names: Sequence[str] = DEFAULT_CLASS_NAMES
) -> CapturedInference:
    try:
        record = json.loads(line)
        capture = record["captureData"]
        metadata = record["eventMetadata"]
        request, response = capture["endpointInput"], capture["endpointOutput"]
        when = parse_time(str(metadata["inferenceTime"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CaptureFormatError(f"not a data capture record ({type(exc).__name__}: {exc})") from None
    output = decode_payload(response)
    try:
        probabilities: tuple[float, ...] | None = tuple(parse_probabilities(output, len(class_names)))
    except InvalidModelOutputError:
        probabilities = None  # a malformed answer was still an answer: counted, without a confidence
    label = confidence = None
    if probabilities:
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        label, confidence = class_names[best], probabilities[best]
    return CapturedInference(
        key=key,
        line=line_number,
        endpoint=endpoint_from_key(key),
        event_id=str(metadata.get("eventId", "")),
        time=when,
        input_content_type=str(request.get("observedContentType", "")),
        input_data=decode_payload(request),
        output_content_type=str(response.get("observedContentType", "")),
        output_data=output,
        probabilities=probabilities,
        label=label,
        confidence=confidence,
    )


def iter_lines(body: bytes) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(body.decode("utf-8", errors="replace").splitlines(), start=1):
        if line.strip():
            yield number, line


def read_capture(
    s3: Any,
    bucket: str,
    prefix: str = DEFAULT_PREFIX,
    endpoint_name: str | None = None,
    class_names: Sequence[str] = DEFAULT_CLASS_NAMES,
) -> Capture:
    """Every record of every capture file under s3://bucket/prefix[/endpoint]/, sorted by time.

    A line that is not a capture record is skipped and named in `problems`, never silently dropped.
    """
    listed = capture_prefix(prefix, endpoint_name)
    capture = Capture(bucket=bucket, prefix=listed)
    for key in list_capture_files(s3, bucket, listed):
        capture.files.append(key)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        for number, line in iter_lines(body):
            try:
                capture.records.append(
                    parse_record(line, key=key, line_number=number, class_names=class_names)
                )
            except CaptureFormatError as exc:
                capture.problems.append(f"{key}:{number}: {exc}")
    capture.records.sort(key=lambda r: (r.time, r.key, r.line))
    return capture
