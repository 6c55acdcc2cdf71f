"""Adapters to AWS: where SDK errors become the workflow's named errors."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_plus

from botocore.exceptions import BotoCoreError, ClientError

from scones_common.exceptions import (
    EndpointError,
    EndpointUnavailableError,
    ImageAccessDeniedError,
    ImageNotFoundError,
    ImageTooLargeError,
    InvalidModelOutputError,
)

_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "Forbidden", "KMS.AccessDeniedException"}
# SageMaker runtime errors worth another try (ASL retries them with backoff); everything else is final.
_TRANSIENT_ENDPOINT_ERRORS = {
    "ThrottlingException",
    "ModelNotReadyException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalDependencyException",
}


@dataclass(frozen=True)
class StoredImage:
    bucket: str
    key: str
    data: bytes


class ImageStore(Protocol):
    def fetch(self, bucket: str, key: str, max_bytes: int) -> StoredImage: ...


class Classifier(Protocol):
    def classify(self, body: bytes, content_type: str) -> list[float]: ...


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


class S3ImageStore:
    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    def fetch(self, bucket: str, key: str, max_bytes: int) -> StoredImage:
        """Read one object, refusing it before download when it is over `max_bytes`.

        Keys from S3 event notifications arrive URL-encoded ("my+photo%C3%A9.png"); when the key as
        given does not exist, the decoded key is tried once before giving up.
        """
        candidates = [key]
        decoded = unquote_plus(key)
        if decoded != key:
            candidates.append(decoded)
        for attempt, candidate in enumerate(candidates, start=1):
            try:
                return self._fetch_exact(bucket, candidate, max_bytes)
            except ImageNotFoundError:
                if attempt == len(candidates):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch_exact(self, bucket: str, key: str, max_bytes: int) -> StoredImage:
        uri = f"s3://{bucket}/{key}"
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
            size = int(head["ContentLength"])
            if size > max_bytes:
                raise ImageTooLargeError(f"{uri} is {size:,} bytes; the limit is {max_bytes:,} bytes")
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = _error_code(exc)
            if code in _NOT_FOUND:
                what = "bucket" if code == "NoSuchBucket" else "object"
                raise ImageNotFoundError(f"{uri}: no such {what} ({code})") from exc
            if code in _DENIED:
                raise ImageAccessDeniedError(f"{uri}: access denied ({code})") from exc
            raise
        return StoredImage(bucket=bucket, key=key, data=body)


class SageMakerClassifier:
    """Calls a SageMaker real-time (or serverless) endpoint that answers like the built-in algorithm."""

    def __init__(self, runtime_client: Any, endpoint_name: str, class_names: list[str]) -> None:
        self._runtime = runtime_client
        self._endpoint_name = endpoint_name
        self._class_names = class_names

    def classify(self, body: bytes, content_type: str) -> list[float]:
        try:
            response = self._runtime.invoke_endpoint(
                EndpointName=self._endpoint_name,
                ContentType=content_type,
                Accept="application/json",
                Body=body,
            )
            raw = response["Body"].read()
        except ClientError as exc:
            code = _error_code(exc)
            message = exc.response.get("Error", {}).get("Message", "")
            text = f"endpoint {self._endpoint_name!r}: {code}: {message}"
            if code in _TRANSIENT_ENDPOINT_ERRORS:
                raise EndpointUnavailableError(text) from exc
            raise EndpointError(text) from exc
        except BotoCoreError as exc:  # timeouts and connection errors: worth another try
            raise EndpointUnavailableError(f"endpoint {self._endpoint_name!r}: {exc}") from exc
        return parse_probabilities(raw, len(self._class_names))


def parse_probabilities(raw: bytes, expected: int) -> list[float]:
    """The built-in algorithm's answer: a JSON array of one probability per class, summing to about 1."""
    try:
        values = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidModelOutputError(f"endpoint answered with non-JSON bytes: {raw[:80]!r}") from None
    if not isinstance(values, list) or len(values) != expected:
        raise InvalidModelOutputError(
            f"expected a JSON array of {expected} probabilities, got {str(values)[:80]}"
        )
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise InvalidModelOutputError(f"non-numeric probabilities: {values}")
    probabilities = [float(v) for v in values]
    if any(not math.isfinite(p) or p < 0.0 or p > 1.0 for p in probabilities):
        raise InvalidModelOutputError(f"probabilities must be finite and in [0, 1]: {probabilities}")
    if abs(sum(probabilities) - 1.0) > 0.01:
        raise InvalidModelOutputError(
            f"probabilities sum to {sum(probabilities):.4f}, not 1: {probabilities}"
        )
    return probabilities
