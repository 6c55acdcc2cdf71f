"""Adapters to AWS, implementing scones_common.ports: where SDK errors become the workflow's named errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from scones_common.exceptions import (
    BatchResultsUnreadableError,
    EndpointError,
    EndpointUnavailableError,
    ImageAccessDeniedError,
    ImageNotFoundError,
    ImageTooLargeError,
)
from scones_common.formats import parse_probabilities
from scones_common.ports import StoredImage

if TYPE_CHECKING:
    from scones_common.duplicates import DynamoDBDeliveryLedger

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
# ModelError (HTTP 424) is how the runtime reports the container's own error answer, with the container's
# status in OriginalStatusCode: a 4xx is this request's fault (final), a 5xx the container's (worth another
# try). The 60 s model timeout is a ModelError too; the runtime reports it as "server error (0)".
_CONTAINER_STATUS = re.compile(r"Received (?:server|client) error \((\d+)\)")
_MODEL_TIMEOUT = "timed out"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _is_container_fault(exc: ClientError) -> bool:
    """A ModelError for the container's 5xx or the model timeout (retried); not for its 4xx (final)."""
    if _error_code(exc) != "ModelError":
        return False
    message = str(exc.response.get("Error", {}).get("Message", ""))
    status = exc.response.get("OriginalStatusCode")
    if not isinstance(status, int):
        # Older answers name the status only in the message: 'Received server error (500) from ...'.
        found = _CONTAINER_STATUS.search(message)
        status = int(found.group(1)) if found else None
    if status is None:
        return _MODEL_TIMEOUT in message
    return status == 0 or status >= 500


class S3ImageStore:
    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    def fetch(self, bucket: str, key: str, max_bytes: int) -> StoredImage:
        """Read one object, refusing it before download when it is over `max_bytes`.

        `key` is the object's real key: a key from an S3 event was decoded once, by ImageRef. Trying an
        encoded key "as given, then decoded" could read another object ("a+b.png" when "a b.png" was
        uploaded).
        """
        return self._fetch_exact(bucket, key, max_bytes)

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


class S3ResultStore:
    """Reads a batch's ResultWriter manifest and result files (summarize_batch)."""

    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    def read(self, bucket: str, key: str) -> bytes:
        try:
            return bytes(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise BatchResultsUnreadableError(f"s3://{bucket}/{key}: {code}") from exc


class LazyDeliveryLedger:
    """The DynamoDB delivery ledger (scones_common.duplicates), created at its first use: executions started
    by hand never need it, and the cold start does not pay for Powertools idempotency and a DynamoDB client
    up front."""

    def __init__(self, table_name: str, ttl_seconds: int, dynamodb_client: Callable[[], Any]) -> None:
        self._table_name = table_name
        self._ttl_seconds = ttl_seconds
        self._dynamodb_client = dynamodb_client
        self._ledger: DynamoDBDeliveryLedger | None = None
        self._lambda_context: Any = None

    def for_invocation(self, lambda_context: Any) -> LazyDeliveryLedger:
        """This ledger, bound to the invocation: Powertools bounds an in-progress record by its remaining
        time."""
        self._lambda_context = lambda_context
        return self

    def is_duplicate(self, object_version: dict[str, str]) -> bool:
        ledger = self._loaded()
        ledger.config.register_lambda_context(self._lambda_context)
        return ledger.is_duplicate(object_version)

    def release(self, object_version: dict[str, str]) -> None:
        self._loaded().release(object_version)

    def _loaded(self) -> DynamoDBDeliveryLedger:
        if self._ledger is None:
            from scones_common.duplicates import DynamoDBDeliveryLedger

            self._ledger = DynamoDBDeliveryLedger(
                self._table_name, self._dynamodb_client(), self._ttl_seconds
            )
        return self._ledger


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
            if code in _TRANSIENT_ENDPOINT_ERRORS or _is_container_fault(exc):
                raise EndpointUnavailableError(text) from exc
            raise EndpointError(text) from exc
        except BotoCoreError as exc:  # timeouts and connection errors: worth another try
            raise EndpointUnavailableError(f"endpoint {self._endpoint_name!r}: {exc}") from exc
        return parse_probabilities(raw, len(self._class_names))
