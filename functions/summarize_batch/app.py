"""Lambda: summarise a batch (counts per label, low confidence, failures by error) from its result files."""

from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from scones_common.exceptions import BatchResultsUnreadableError
from scones_common.logic.summarize import summarize_batch
from scones_common.models import SummarizeBatchRequest, parse_event
from scones_common.observability import logger, metrics, tracer

_s3 = boto3.client("s3")


def read_object(bucket: str, key: str) -> bytes:
    try:
        return bytes(_s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise BatchResultsUnreadableError(f"s3://{bucket}/{key}: {code}") from exc


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(SummarizeBatchRequest, event)
    logger.set_correlation_id(request.map_run_arn)

    summary = summarize_batch(request, read_object)

    metrics.add_metric(name="BatchImages", unit=MetricUnit.Count, value=summary.total)
    metrics.add_metric(name="BatchImagesFailed", unit=MetricUnit.Count, value=summary.failed)
    metrics.add_metric(name="BatchImagesLowConfidence", unit=MetricUnit.Count, value=summary.low_confidence)
    logger.info("batch summarised", extra=summary.model_dump(exclude={"failure_examples"}))
    return summary.model_dump()
