"""filter_inferences: pass confident classifications on, stop the rest with a named error."""

from __future__ import annotations

from scones_common.exceptions import ThresholdConfidenceNotMetError
from scones_common.models import ClassifiedImage, FilteredImage


def filter_inferences(image: ClassifiedImage, threshold: float) -> FilteredImage:
    if image.confidence < threshold:
        raise ThresholdConfidenceNotMetError(
            f"confidence {image.confidence:.4f} for {image.label!r} is below the threshold {threshold:.4f} "
            f"(s3://{image.s3_bucket}/{image.s3_key})"
        )
    return FilteredImage(**image.model_dump(), threshold=threshold)
