"""Lambda: read the image from S3 and return it base64-encoded as `image_data`."""

from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from scones_common.adapters import LazyDeliveryLedger, S3ImageStore
from scones_common.logic.serialize import serialize_delivery
from scones_common.models import DuplicateImage, ImageRef, parse_event
from scones_common.observability import logger, metrics, tracer
from scones_common.settings import SerializeSettings, load_settings

settings = load_settings(SerializeSettings)
image_store = S3ImageStore(boto3.client("s3"))
delivery_ledger = LazyDeliveryLedger(
    settings.idempotency_table_name, settings.idempotency_ttl_seconds, lambda: boto3.client("dynamodb")
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
# The response carries the image (up to about 200 KB of base64): recorded as X-Ray metadata it would make
# a trace document over the 64 KB that Powertools documents for capture_response=False.
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ref = parse_event(ImageRef, event)
    logger.set_correlation_id(ref.s3_uri)
    tracer.put_annotation("s3_key", ref.s3_key)

    result = serialize_delivery(ref, image_store, delivery_ledger.for_invocation(context), settings)

    if isinstance(result, DuplicateImage):
        metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)
        logger.info("duplicate delivery ignored", extra=ref.object_version)
        return result.model_dump()

    metrics.add_metric(name="ImageBytes", unit=MetricUnit.Bytes, value=result.original_bytes)
    if result.normalized:
        metrics.add_metric(name="ImagesNormalized", unit=MetricUnit.Count, value=1)
    logger.info(
        "image serialized",
        extra={
            "format": result.image_format,
            "width": result.width,
            "height": result.height,
            "original_bytes": result.original_bytes,
            "normalized": result.normalized,
        },
    )
    return result.model_dump()
