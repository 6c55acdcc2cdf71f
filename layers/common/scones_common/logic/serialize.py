"""serialize_image_data: fetch the S3 image, check it decodes, make it small enough for a state; once per
object version."""

from __future__ import annotations

import base64

from scones_common.images import ENDPOINT_FORMATS, decode_image, encode_jpeg, encode_png, inspect_image
from scones_common.models import DuplicateImage, ImageRef, SerializedImage
from scones_common.ports import DeliveryLedger, ImageStore
from scones_common.settings import SerializeSettings

# Longest side tried, in turn, when an image must shrink to fit a state. The model sees 32x32, so
# even the smallest keeps far more detail than it uses.
_RESIZE_STEPS = (1024, 512, 256, 128)


def serialize_delivery(
    ref: ImageRef, store: ImageStore, ledger: DeliveryLedger, settings: SerializeSettings
) -> SerializedImage | DuplicateImage:
    """The serialized image or, for a repeated delivery of an object version, a DuplicateImage (the state
    machine then ends at once). Inputs without an object version (manual runs) are never duplicates."""
    result = serialize_image(ref, store, settings)
    # Recorded only once the image serialized: a delivery that failed here can be delivered again.
    version = ref.object_version
    if version is not None and ledger.is_duplicate(version):
        return DuplicateImage(s3_bucket=ref.s3_bucket, s3_key=ref.s3_key)
    return result


def serialize_image(ref: ImageRef, store: ImageStore, settings: SerializeSettings) -> SerializedImage:
    stored = store.fetch(ref.s3_bucket, ref.s3_key, settings.max_image_bytes)
    info = inspect_image(stored.data)
    image = decode_image(stored.data, max_pixels=settings.max_image_pixels)

    body, fmt = stored.data, info.format
    if info.format not in ENDPOINT_FORMATS:
        body, fmt = encode_png(image), "PNG"
    for longest_side in _RESIZE_STEPS:
        if len(body) <= settings.max_inline_image_bytes:
            break
        small = image.copy()
        small.thumbnail((longest_side, longest_side))
        body, fmt = encode_jpeg(small), "JPEG"

    return SerializedImage(
        s3_bucket=stored.bucket,
        s3_key=stored.key,
        image_data=base64.b64encode(body).decode("ascii"),
        content_type="image/png" if fmt == "PNG" else "image/jpeg",
        image_format=info.format,
        width=info.width,
        height=info.height,
        original_bytes=len(stored.data),
        normalized=body is not stored.data,
    )
