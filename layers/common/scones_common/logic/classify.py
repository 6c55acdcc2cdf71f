"""classify_image: send the serialized image to the endpoint, name the most likely class."""

from __future__ import annotations

import base64
import binascii
import time

from scones_common.exceptions import InvalidInputError
from scones_common.formats import endpoint_content_type
from scones_common.models import ClassifiedImage, SerializedImage
from scones_common.ports import Classifier


def classify_image(
    image: SerializedImage, classifier: Classifier, class_names: list[str], endpoint_name: str
) -> ClassifiedImage:
    try:
        body = base64.b64decode(image.image_data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"image_data is not valid base64: {exc}") from None
    # The bytes decide the content type, not the key's suffix or the event's claim.
    content_type = endpoint_content_type(body)

    started = time.perf_counter()
    inferences = classifier.classify(body, content_type)
    inference_ms = (time.perf_counter() - started) * 1000.0

    best = max(range(len(inferences)), key=inferences.__getitem__)
    return ClassifiedImage(
        s3_bucket=image.s3_bucket,
        s3_key=image.s3_key,
        inferences=inferences,
        class_names=class_names,
        label=class_names[best],
        confidence=inferences[best],
        content_type=content_type,
        endpoint_name=endpoint_name,
        inference_ms=round(inference_ms, 3),
    )
