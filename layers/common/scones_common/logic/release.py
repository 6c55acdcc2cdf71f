"""release_delivery: an execution that recorded its delivery and then failed forgets it, so that the same
object version, delivered or started again, is classified rather than skipped as a duplicate."""

from __future__ import annotations

from scones_common.models import ReleasedDelivery, ReleaseDeliveryRequest
from scones_common.ports import DeliveryLedger


def release_delivery(request: ReleaseDeliveryRequest, ledger: DeliveryLedger) -> ReleasedDelivery:
    ref = request.execution_input
    version = ref.object_version
    if version is not None:
        ledger.release(version)
    return ReleasedDelivery(s3_bucket=ref.s3_bucket, s3_key=ref.s3_key, released=version is not None)
