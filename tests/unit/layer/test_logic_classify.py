"""scones_common.logic.classify with a fake classifier: the label, the content type, the named errors."""

from __future__ import annotations

import base64

import pytest

from scones_common.exceptions import (
    EndpointUnavailableError,
    InvalidImageError,
    InvalidInputError,
    UnsupportedImageFormatError,
)
from scones_common.logic.classify import classify_image
from scones_common.models import SerializedImage
from tests.helpers import png_bytes
from tests.unit.layer.fakes import FakeClassifier

CLASSES = ["bicycle", "motorcycle"]


def serialized(body: bytes, image_data: str | None = None) -> SerializedImage:
    return SerializedImage(
        s3_bucket="scones-local-images",
        s3_key="a.jpg",
        image_data=base64.b64encode(body).decode() if image_data is None else image_data,
        content_type="image/jpeg",  # what the event claims; the bytes decide
        image_format="PNG",
        width=32,
        height=32,
        original_bytes=len(body) or 1,
        normalized=False,
    )


def test_the_most_likely_class_is_the_label() -> None:
    # Given an endpoint that answers motorcycle with 0.8
    classifier = FakeClassifier([0.2, 0.8])
    body = png_bytes()
    # When classified
    result = classify_image(serialized(body), classifier, CLASSES, "ep-1")
    # Then label and confidence are the most likely class's, with every probability kept
    assert (result.label, result.confidence, result.inferences) == ("motorcycle", 0.8, [0.2, 0.8])
    assert (result.class_names, result.endpoint_name) == (CLASSES, "ep-1")
    assert result.inference_ms >= 0.0


def test_the_endpoint_gets_the_decoded_bytes_with_the_content_type_they_show() -> None:
    # Given PNG bytes in an event that claims image/jpeg under a .jpg key
    classifier = FakeClassifier([0.9, 0.1])
    body = png_bytes()
    result = classify_image(serialized(body), classifier, CLASSES, "ep")
    # Then the endpoint was sent the raw PNG as image/png
    assert classifier.requests == [(body, "image/png")]
    assert result.content_type == "image/png"


def test_image_data_that_is_not_base64_is_invalid_input_and_the_endpoint_is_not_called() -> None:
    classifier = FakeClassifier([0.9, 0.1])
    with pytest.raises(InvalidInputError, match="not valid base64"):
        classify_image(serialized(b"", image_data="***not base64***"), classifier, CLASSES, "ep")
    assert classifier.requests == []


@pytest.mark.parametrize(
    ("body", "error"),
    [(b"GIF89a" + b"\0" * 20, UnsupportedImageFormatError), (b"plain text", InvalidImageError)],
)
def test_bytes_the_endpoint_cannot_take_are_named_before_it_is_called(
    body: bytes, error: type[Exception]
) -> None:
    classifier = FakeClassifier([0.9, 0.1])
    with pytest.raises(error):
        classify_image(serialized(body), classifier, CLASSES, "ep")
    assert classifier.requests == []


def test_an_endpoint_error_reaches_the_state_machine_unchanged() -> None:
    # Given an endpoint that is throttling / Then the retryable error's name is what the ASL sees
    classifier = FakeClassifier([], error=EndpointUnavailableError("endpoint 'ep': ThrottlingException"))
    with pytest.raises(EndpointUnavailableError, match="ThrottlingException"):
        classify_image(serialized(png_bytes()), classifier, CLASSES, "ep")
