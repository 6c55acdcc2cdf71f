"""Lambda: read the image from S3 and return it base64-encoded as `image_data`."""

import functools
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from scones_common.adapters import S3ImageStore
from scones_common.logic.serialize import serialize_image
from scones_common.models import DuplicateImage, ImageRef, parse_event
from scones_common.observability import logger, metrics, tracer
from scones_common.settings import SerializeSettings, load_settings

if TYPE_CHECKING:
    from scones_common.duplicates import DeliveryLedger

settings = load_settings(SerializeSettings)
image_store = S3ImageStore(boto3.client("s3"))


@functools.cache
def delivery_ledger() -> "DeliveryLedger":
    """Created at the first upload-started invocation: executions started by hand never need it, and
    the cold start does not pay for Powertools idempotency and a DynamoDB client up front."""
    from scones_common.duplicates import DeliveryLedger

    return DeliveryLedger(
        settings.idempotency_table_name, boto3.client("dynamodb"), settings.idempotency_ttl_seconds
    )


def _is_duplicate(version: dict[str, str], context: LambdaContext) -> bool:
    ledger = delivery_ledger()
    ledger.config.register_lambda_context(context)
    return ledger.is_duplicate(version)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ref = parse_event(ImageRef, event)
    logger.set_correlation_id(ref.s3_uri)
    tracer.put_annotation("s3_key", ref.s3_key)
    result = serialize_image(ref, image_store, settings)

    # Recorded only once the image serialized: a delivery that failed here can be delivered again.
    version = ref.object_version
    if version is not None and _is_duplicate(version, context):
        metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)
        logger.info("duplicate delivery ignored", extra=version)
        return DuplicateImage(s3_bucket=ref.s3_bucket, s3_key=ref.s3_key).model_dump()

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
