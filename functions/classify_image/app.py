"""Lambda: classify the serialized image with the SageMaker endpoint."""

from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from scones_common.adapters import SageMakerClassifier
from scones_common.logic.classify import classify_image
from scones_common.models import SerializedImage, parse_event
from scones_common.observability import logger, metrics, tracer
from scones_common.settings import ClassifySettings, load_settings

settings = load_settings(ClassifySettings)
# One attempt per call: the state machine's Retry owns retries, so each one shows in the history.
_runtime = boto3.client("sagemaker-runtime", config=Config(retries={"mode": "standard", "max_attempts": 1}))
classifier = SageMakerClassifier(_runtime, settings.endpoint_name, settings.class_list)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    image = parse_event(SerializedImage, event)
    logger.set_correlation_id(f"s3://{image.s3_bucket}/{image.s3_key}")
    tracer.put_annotation("s3_key", image.s3_key)

    result = classify_image(image, classifier, settings.class_list, settings.endpoint_name)

    tracer.put_annotation("label", result.label)
    # A number, so X-Ray filter expressions can compare it; mypy does not see float as numbers.Number.
    tracer.put_annotation("confidence", result.confidence)  # type: ignore[arg-type]
    metrics.add_metric(name="InferenceLatency", unit=MetricUnit.Milliseconds, value=result.inference_ms)
    with single_metric(name="ImagesClassified", unit=MetricUnit.Count, value=1) as per_label:
        per_label.add_dimension(name="label", value=result.label)
    logger.info(
        "image classified",
        extra={"label": result.label, "confidence": result.confidence, "inferences": result.inferences},
    )
    return result.model_dump()
