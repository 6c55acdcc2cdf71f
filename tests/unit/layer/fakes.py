"""In-memory fakes of the layer's ports (scones_common.ports), for unit tests of scones_common.logic.

Each keeps the contract its port documents (the same named errors as the adapter) and records what it
was asked, so a test can say what the logic did. Integration tests use moto and the harness instead.
"""

from __future__ import annotations

from scones_common.exceptions import BatchResultsUnreadableError, ImageNotFoundError, ImageTooLargeError
from scones_common.ports import StoredImage


class InMemoryImageStore:
    """ImageStore over a dict of (bucket, key) -> bytes; refuses an object over `max_bytes`, as S3ImageStore
    does, before handing out its bytes."""

    def __init__(self, objects: dict[tuple[str, str], bytes] | None = None) -> None:
        self.objects = dict(objects or {})
        self.fetches: list[tuple[str, str]] = []

    def fetch(self, bucket: str, key: str, max_bytes: int) -> StoredImage:
        self.fetches.append((bucket, key))
        uri = f"s3://{bucket}/{key}"
        if (bucket, key) not in self.objects:
            raise ImageNotFoundError(f"{uri}: no such object (NoSuchKey)")
        data = self.objects[(bucket, key)]
        if len(data) > max_bytes:
            raise ImageTooLargeError(f"{uri} is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
        return StoredImage(bucket=bucket, key=key, data=data)


class FakeClassifier:
    """Classifier that answers fixed probabilities, or raises `error`; records each request."""

    def __init__(self, probabilities: list[float], error: Exception | None = None) -> None:
        self.probabilities = probabilities
        self.error = error
        self.requests: list[tuple[bytes, str]] = []

    def classify(self, body: bytes, content_type: str) -> list[float]:
        self.requests.append((body, content_type))
        if self.error is not None:
            raise self.error
        return list(self.probabilities)


class InMemoryDeliveryLedger:
    """DeliveryLedger over a list of the object versions recorded so far; records each question."""

    def __init__(self) -> None:
        self.recorded: list[dict[str, str]] = []
        self.questions: list[dict[str, str]] = []

    def is_duplicate(self, object_version: dict[str, str]) -> bool:
        self.questions.append(dict(object_version))
        if object_version in self.recorded:
            return True
        self.recorded.append(dict(object_version))
        return False

    def release(self, object_version: dict[str, str]) -> None:
        if object_version in self.recorded:
            self.recorded.remove(object_version)


class InMemoryResultStore:
    """ResultStore over a dict of (bucket, key) -> bytes; a missing object is unreadable, as with S3."""

    def __init__(self, objects: dict[tuple[str, str], bytes]) -> None:
        self.objects = objects
        self.reads: list[tuple[str, str]] = []

    def read(self, bucket: str, key: str) -> bytes:
        self.reads.append((bucket, key))
        if (bucket, key) not in self.objects:
            raise BatchResultsUnreadableError(f"s3://{bucket}/{key}: NoSuchKey")
        return self.objects[(bucket, key)]
