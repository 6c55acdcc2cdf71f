"""scones_common.logic.filter: confident classifications pass on, the rest stop with the named error."""

from __future__ import annotations

import pytest

from scones_common.exceptions import ThresholdConfidenceNotMetError
from scones_common.logic.filter import filter_inferences
from scones_common.models import ClassifiedImage


def classified(confidence: float) -> ClassifiedImage:
    return ClassifiedImage(
        s3_bucket="scones-local-images",
        s3_key="a.png",
        inferences=[confidence, 1.0 - confidence],
        class_names=["bicycle", "motorcycle"],
        label="bicycle",
        confidence=confidence,
        content_type="image/png",
        endpoint_name="ep",
        inference_ms=1.0,
    )


@pytest.mark.parametrize("confidence", [0.93, 0.99])
def test_a_confidence_at_or_above_the_threshold_passes_with_the_threshold(confidence: float) -> None:
    # Given a classification at or above 0.93 / When filtered
    result = filter_inferences(classified(confidence), 0.93)
    # Then it passes on unchanged, with the threshold it was held to
    assert result.model_dump() == {**classified(confidence).model_dump(), "threshold": 0.93}


def test_a_confidence_below_the_threshold_is_the_named_error() -> None:
    # Given 0.9299 against 0.93 / Then ThresholdConfidenceNotMetError names both, the label and the object
    with pytest.raises(ThresholdConfidenceNotMetError) as caught:
        filter_inferences(classified(0.9299), 0.93)
    message = str(caught.value)
    assert "0.9299" in message and "0.9300" in message
    assert "'bicycle'" in message and "s3://scones-local-images/a.png" in message
