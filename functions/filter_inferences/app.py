"""Lambda: pass the classification on when it is confident enough, else raise a named error."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from scones_common.exceptions import ThresholdConfidenceNotMetError
from scones_common.logic.filter import filter_inferences
from scones_common.models import ClassifiedImage, parse_event
from scones_common.observability import logger, metrics, tracer
from scones_common.settings import FilterSettings, load_settings

settings = load_settings(FilterSettings)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    image = parse_event(ClassifiedImage, event)
    logger.set_correlation_id(f"s3://{image.s3_bucket}/{image.s3_key}")
    tracer.put_annotation("label", image.label)
    # A number, so X-Ray filter expressions can compare it; mypy does not see float as numbers.Number.
    tracer.put_annotation("confidence", image.confidence)  # type: ignore[arg-type]

    try:
        result = filter_inferences(image, settings.confidence_threshold)
    except ThresholdConfidenceNotMetError:
        metrics.add_metric(name="LowConfidenceImages", unit=MetricUnit.Count, value=1)
        logger.warning(
            "confidence below threshold",
            extra={"confidence": image.confidence, "threshold": settings.confidence_threshold},
        )
        raise

    metrics.add_metric(name="ImagesAccepted", unit=MetricUnit.Count, value=1)
    return result.model_dump()
