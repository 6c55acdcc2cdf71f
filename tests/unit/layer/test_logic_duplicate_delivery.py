"""The duplicate-delivery decision (scones_common.logic.serialize.serialize_delivery) on in-memory fakes."""

from __future__ import annotations

import pytest

from scones_common.exceptions import InvalidImageError
from scones_common.logic.serialize import serialize_delivery
from scones_common.models import DuplicateImage, ImageRef, SerializedImage
from scones_common.settings import SerializeSettings
from tests.helpers import png_bytes
from tests.unit.layer.fakes import InMemoryDeliveryLedger, InMemoryImageStore

BUCKET = "scones-local-images"
KEY = "uploads/bike.png"
SETTINGS = SerializeSettings(idempotency_table_name="ledger")


def upload(etag: str | None = "e1", version_id: str | None = None) -> ImageRef:
    """The input an S3 upload starts an execution with (no etag: an execution started by hand)."""
    return ImageRef(s3_bucket=BUCKET, s3_key=KEY, etag=etag, version_id=version_id)


@pytest.fixture
def store() -> InMemoryImageStore:
    return InMemoryImageStore({(BUCKET, KEY): png_bytes()})


@pytest.fixture
def ledger() -> InMemoryDeliveryLedger:
    return InMemoryDeliveryLedger()


def test_the_first_delivery_is_serialized_and_recorded(
    store: InMemoryImageStore, ledger: InMemoryDeliveryLedger
) -> None:
    # When an upload is delivered once
    result = serialize_delivery(upload(), store, ledger, SETTINGS)
    # Then the image goes on, and its object version is recorded
    assert isinstance(result, SerializedImage) and result.duplicate is False
    assert ledger.recorded == [{"s3_bucket": BUCKET, "s3_key": KEY, "etag": "e1", "version_id": ""}]


def test_a_repeated_delivery_is_skipped_as_a_duplicate(
    store: InMemoryImageStore, ledger: InMemoryDeliveryLedger
) -> None:
    # Given an upload already serialized
    serialize_delivery(upload(), store, ledger, SETTINGS)
    # When the same object version is delivered again
    result = serialize_delivery(upload(), store, ledger, SETTINGS)
    # Then the output is the duplicate marker the ASL ends on, and nothing else
    assert isinstance(result, DuplicateImage)
    assert result.model_dump() == {"s3_bucket": BUCKET, "s3_key": KEY, "duplicate": True}


@pytest.mark.parametrize(
    "other", [upload(etag="e2"), upload(version_id="v2")], ids=["new etag", "new version id"]
)
def test_a_new_version_of_the_same_key_is_not_a_duplicate(
    store: InMemoryImageStore, ledger: InMemoryDeliveryLedger, other: ImageRef
) -> None:
    serialize_delivery(upload(), store, ledger, SETTINGS)
    assert isinstance(serialize_delivery(other, store, ledger, SETTINGS), SerializedImage)


def test_executions_started_by_hand_never_ask_the_ledger(
    store: InMemoryImageStore, ledger: InMemoryDeliveryLedger
) -> None:
    # When the same key is run by hand twice (no etag in the input)
    results = [serialize_delivery(upload(etag=None), store, ledger, SETTINGS) for _ in range(2)]
    # Then both are serialized and the ledger was never asked
    assert all(isinstance(result, SerializedImage) for result in results)
    assert ledger.questions == []


def test_a_delivery_that_fails_is_not_recorded_so_a_redelivery_is_serialized(
    ledger: InMemoryDeliveryLedger,
) -> None:
    # Given an upload whose bytes are not an image yet (say, read mid-write)
    store = InMemoryImageStore({(BUCKET, KEY): b"not an image"})
    # When it is delivered / Then the step fails with the named error and records nothing
    with pytest.raises(InvalidImageError):
        serialize_delivery(upload(), store, ledger, SETTINGS)
    assert ledger.questions == []
    # And when the same version is delivered again and reads well, it is serialized, not skipped
    store.objects[(BUCKET, KEY)] = png_bytes()
    assert isinstance(serialize_delivery(upload(), store, ledger, SETTINGS), SerializedImage)
