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


# --- the upload rule's input: URL-encoded keys and unversioned buckets ------------------------------


@pytest.mark.parametrize(
    ("event_key", "real_key"),
    [
        ("incoming/red+flower.png", "incoming/red flower.png"),
        ("incoming/a%2Bb.png", "incoming/a+b.png"),
        ("incoming/100%25.png", "incoming/100%.png"),
        ("incoming/v%C3%A9lo.png", "incoming/vélo.png"),
        ("incoming/a%2520b.png", "incoming/a%20b.png"),
    ],
    ids=["space", "plus", "percent", "unicode", "literal-%20"],
)
def test_a_url_encoded_key_is_decoded_exactly_once(event_key: str, real_key: str) -> None:
    # Given the rule's input, whose key is as S3 writes it into the event
    event = {"s3_bucket": "images", "s3_key": event_key, "s3_key_encoding": "url", "etag": "e"}
    # When it is parsed, and the result parsed again (as a retried step would)
    ref = parse_event(ImageRef, event)
    again = parse_event(ImageRef, ref.model_dump())
    # Then the key is the object's real key, decoded once and never twice
    assert ref.s3_key == again.s3_key == real_key
    assert ref.s3_key_encoding is None and ref.object_version is not None
    assert ref.object_version["s3_key"] == real_key


def test_a_key_without_encoding_is_taken_literally() -> None:
    # Given a manual run's input naming an object whose key has "+" and "%"
    ref = parse_event(ImageRef, {"s3_bucket": "images", "s3_key": "test/a+b%41.png"})
    # Then it is not decoded
    assert ref.s3_key == "test/a+b%41.png"


def test_an_unknown_key_encoding_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="s3_key_encoding"):
        parse_event(ImageRef, {"s3_bucket": "images", "s3_key": "a.png", "s3_key_encoding": "base64"})


def test_an_empty_version_id_means_no_version() -> None:
    # Given the rule's input for an unversioned bucket: the version-id placeholder left empty
    event = {
        "s3_bucket": "images",
        "s3_key": "a.png",
        "s3_key_encoding": "url",
        "etag": "e",
        "version_id": "",
    }
    # When it is parsed / Then there is no version, and the delivery is still identified by its etag
    ref = parse_event(ImageRef, event)
    assert ref.version_id is None
    assert ref.object_version == {"s3_bucket": "images", "s3_key": "a.png", "etag": "e", "version_id": ""}
