"""The interfaces logic depends on; adapters implement them (no boto3 or botocore here, nor below)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StoredImage:
    bucket: str
    key: str
    data: bytes


class ImageStore(Protocol):
    def fetch(self, bucket: str, key: str, max_bytes: int) -> StoredImage:
        """The object's bytes. ImageNotFoundError, ImageAccessDeniedError, or ImageTooLargeError when it
        is over `max_bytes` (refused before it is downloaded)."""
        ...


class Classifier(Protocol):
    def classify(self, body: bytes, content_type: str) -> list[float]:
        """One probability per class. EndpointError, EndpointUnavailableError or InvalidModelOutputError."""
        ...


class ResultStore(Protocol):
    def read(self, bucket: str, key: str) -> bytes:
        """A batch's ResultWriter manifest or result file; BatchResultsUnreadableError when unreadable."""
        ...


class DeliveryLedger(Protocol):
    def is_duplicate(self, object_version: dict[str, str]) -> bool:
        """Records the object version; True when it was recorded before (a repeated delivery)."""
        ...

    def release(self, object_version: dict[str, str]) -> None:
        """Forgets the object version (its execution failed): its next delivery is a first one again."""
        ...
