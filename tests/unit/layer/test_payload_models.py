"""The workflow's contract: one test per constraint of each payload model."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scones_common.exceptions import InvalidInputError, ThresholdConfidenceNotMetError
from scones_common.logic.filter import filter_inferences
from scones_common.models import ClassifiedImage, ImageRef, SerializedImage, parse_event
from tests.helpers import PROJECT_ROOT

EVENTS = PROJECT_ROOT / "events"


def classified(confidence: float = 0.97) -> ClassifiedImage:
    return ClassifiedImage(
        s3_bucket="scones-local-images",
        s3_key="test/a.png",
        inferences=[confidence, 1 - confidence],
        class_names=["bicycle", "motorcycle"],
        label="bicycle",
        confidence=confidence,
        content_type="image/png",
        endpoint_name="e",
        inference_ms=1.0,
    )


def test_original_course_event_is_accepted() -> None:
    # Given the original course's test event, with an empty image_data
    event = {"image_data": "", "s3_bucket": "sagemaker-us-east-1-123", "s3_key": "test/bicycle_s_000513.png"}
    # When it is parsed / Then the reference is kept
    ref = parse_event(ImageRef, event)
    assert ref.s3_uri == "s3://sagemaker-us-east-1-123/test/bicycle_s_000513.png"


def test_missing_key_is_named() -> None:
    with pytest.raises(InvalidInputError, match="s3_key: Field required"):
        parse_event(ImageRef, {"s3_bucket": "my-bucket"})


def test_wrong_type_is_named() -> None:
    with pytest.raises(InvalidInputError, match="s3_key"):
        parse_event(ImageRef, {"s3_bucket": "my-bucket", "s3_key": 42})


def test_extra_fields_are_ignored() -> None:
    ref = parse_event(ImageRef, {"s3_bucket": "my-bucket", "s3_key": "a.png", "priority": "high"})
    assert not hasattr(ref, "priority")


def test_invalid_bucket_name_is_named() -> None:
    with pytest.raises(InvalidInputError, match="s3_bucket"):
        parse_event(ImageRef, {"s3_bucket": "Not_A_Bucket", "s3_key": "a.png"})


@pytest.mark.parametrize("event", [None, [], "s3://bucket/key", 3])
def test_non_object_event_is_named(event: object) -> None:
    with pytest.raises(InvalidInputError, match="expected a JSON object"):
        parse_event(ImageRef, event)


def test_out_of_range_confidence_is_rejected() -> None:
    payload = classified().model_dump() | {"confidence": 1.5}
    with pytest.raises(InvalidInputError, match="confidence"):
        parse_event(ClassifiedImage, payload)


def test_nan_inference_is_rejected() -> None:
    payload = classified().model_dump() | {"inferences": [float("nan"), 0.5]}
    with pytest.raises(InvalidInputError, match="inferences"):
        parse_event(ClassifiedImage, payload)


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("state_machine_input.json", ImageRef),
        ("serialize_image_data.json", ImageRef),
        ("classify_image.json", SerializedImage),
        ("filter_inferences.json", ClassifiedImage),
    ],
)
def test_sample_events_match_their_models(name: str, model: type) -> None:
    parse_event(model, json.loads((EVENTS / name).read_text()))


def test_s3_event_names_an_object_created_in_a_bucket() -> None:
    event = json.loads((EVENTS / "s3_object_created.json").read_text())
    assert event["source"] == "aws.s3" and event["detail-type"] == "Object Created"
    parse_event(
        ImageRef, {"s3_bucket": event["detail"]["bucket"]["name"], "s3_key": event["detail"]["object"]["key"]}
    )


@given(
    confidence=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
    threshold=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
)
def test_filter_passes_exactly_when_confidence_reaches_threshold(confidence: float, threshold: float) -> None:
    image = classified(confidence)
    if confidence >= threshold:
        assert filter_inferences(image, threshold).threshold == threshold
    else:
        with pytest.raises(ThresholdConfidenceNotMetError, match="below the threshold"):
            filter_inferences(image, threshold)
