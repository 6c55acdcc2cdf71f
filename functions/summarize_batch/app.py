"""Lambda: summarise a batch (counts per label, low confidence, failures by error) from its result files."""

from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from scones_common.adapters import S3ResultStore
from scones_common.logic.summarize import summarize_batch
from scones_common.models import SummarizeBatchRequest, parse_event
from scones_common.observability import logger, metrics, tracer

result_store = S3ResultStore(boto3.client("s3"))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(SummarizeBatchRequest, event)
    logger.set_correlation_id(request.map_run_arn)

    summary = summarize_batch(request, result_store)

    metrics.add_metric(name="BatchImages", unit=MetricUnit.Count, value=summary.total)
    metrics.add_metric(name="BatchImagesFailed", unit=MetricUnit.Count, value=summary.failed)
    metrics.add_metric(name="BatchImagesLowConfidence", unit=MetricUnit.Count, value=summary.low_confidence)
    logger.info("batch summarised", extra=summary.model_dump(exclude={"failure_examples"}))
    return summary.model_dump()
