"""release_delivery (scones_common.logic.release) on the in-memory ledger."""

from __future__ import annotations

from scones_common.logic.release import release_delivery
from scones_common.models import ImageRef, ReleaseDeliveryRequest
from tests.unit.layer.fakes import InMemoryDeliveryLedger

BUCKET, KEY = "scones-local-images", "uploads/bike.png"


def test_a_recorded_delivery_is_released_and_counts_as_new_again() -> None:
    # Given a delivery recorded by serialize
    ledger = InMemoryDeliveryLedger()
    ref = ImageRef(s3_bucket=BUCKET, s3_key=KEY, etag="e1", version_id="v1")
    assert ref.object_version is not None and ledger.is_duplicate(ref.object_version) is False
    # When its execution fails and releases it
    result = release_delivery(ReleaseDeliveryRequest(execution_input=ref), ledger)
    # Then the next delivery of that version is not a duplicate
    assert result.released is True and (result.s3_bucket, result.s3_key) == (BUCKET, KEY)
    assert ledger.is_duplicate(ref.object_version) is False


def test_a_manual_run_has_nothing_to_release() -> None:
    # Given an execution started by hand (no etag) / When it releases / Then nothing is asked of the ledger
    ledger = InMemoryDeliveryLedger()
    ledger.recorded.append({"s3_bucket": BUCKET, "s3_key": KEY, "etag": "e1", "version_id": ""})
    result = release_delivery(
        ReleaseDeliveryRequest(execution_input=ImageRef(s3_bucket=BUCKET, s3_key=KEY)), ledger
    )
    assert result.released is False and len(ledger.recorded) == 1
