"""Lambda: forget the delivery record of an execution that failed after serializing its image."""

from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from scones_common.adapters import LazyDeliveryLedger
from scones_common.logic.release import release_delivery
from scones_common.models import ReleaseDeliveryRequest, parse_event
from scones_common.observability import logger, metrics, tracer
from scones_common.settings import ReleaseSettings, load_settings

settings = load_settings(ReleaseSettings)
delivery_ledger = LazyDeliveryLedger(
    settings.idempotency_table_name, settings.idempotency_ttl_seconds, lambda: boto3.client("dynamodb")
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(ReleaseDeliveryRequest, event)
    logger.set_correlation_id(request.execution_input.s3_uri)

    result = release_delivery(request, delivery_ledger)

    if result.released:
        metrics.add_metric(name="DeliveriesReleased", unit=MetricUnit.Count, value=1)
        logger.info("delivery released", extra=request.execution_input.object_version)
    return result.model_dump()
