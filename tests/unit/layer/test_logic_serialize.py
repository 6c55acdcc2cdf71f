"""scones_common.logic.serialize on an in-memory image store: one test per rule of the serialize step."""

from __future__ import annotations

import base64
import io
import os

import pytest
from PIL import Image

from scones_common.exceptions import (
    ImageNotFoundError,
    ImageTooLargeError,
    InvalidImageError,
    UnsupportedImageFormatError,
)
from scones_common.logic.serialize import serialize_image
from scones_common.models import ImageRef
from scones_common.settings import SerializeSettings
from tests.helpers import png_bytes
from tests.unit.layer.fakes import InMemoryImageStore

BUCKET = "scones-local-images"


def settings(**limits: int) -> SerializeSettings:
    return SerializeSettings(idempotency_table_name="ledger", **limits)


def serialize(data: bytes, key: str = "a.png", **limits: int) -> tuple[dict[str, object], bytes]:
    """The step's output for `data` stored under `key`, and the bytes it would send to the endpoint."""
    store = InMemoryImageStore({(BUCKET, key): data})
    result = serialize_image(ImageRef(s3_bucket=BUCKET, s3_key=key), store, settings(**limits))
    return result.model_dump(), base64.b64decode(result.image_data)


def encoded(size: tuple[int, int], fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def noise_png(size: tuple[int, int]) -> bytes:
    """A PNG that does not compress: random pixels."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_small_png_passes_unchanged() -> None:
    # Given a 32x32 PNG / When serialized
    data = png_bytes((32, 32))
    payload, body = serialize(data)
    # Then the endpoint gets the very bytes, described from the header
    assert body == data
    assert payload["content_type"] == "image/png" and payload["image_format"] == "PNG"
    assert (payload["width"], payload["height"], payload["original_bytes"]) == (32, 32, len(data))
    assert payload["normalized"] is False and payload["duplicate"] is False


def test_the_content_type_comes_from_the_bytes_not_the_key() -> None:
    # Given a JPEG stored under a .png key / When serialized / Then it goes on as JPEG
    payload, body = serialize(encoded((40, 30), "JPEG"), key="looks-like.png")
    assert payload["content_type"] == "image/jpeg" and body.startswith(b"\xff\xd8\xff")


def test_a_format_the_endpoint_does_not_take_is_re_encoded_as_png() -> None:
    # Given a BMP / When serialized / Then the endpoint gets a PNG of the same size, marked normalized
    payload, body = serialize(encoded((20, 10), "BMP"), key="a.bmp")
    assert payload["image_format"] == "BMP" and payload["content_type"] == "image/png"
    assert payload["normalized"] is True
    assert Image.open(io.BytesIO(body)).format == "PNG"
    assert Image.open(io.BytesIO(body)).size == (20, 10)


def test_an_image_too_big_for_a_state_shrinks_to_a_jpeg_under_the_limit() -> None:
    # Given a PNG of noise far above the inline limit
    data = noise_png((600, 400))
    limit = 40_000
    assert len(data) > limit
    # When serialized
    payload, body = serialize(data, max_inline_image_bytes=limit)
    # Then what goes on is a JPEG under the limit, the original's size still reported
    assert len(body) <= limit and body.startswith(b"\xff\xd8\xff")
    assert payload["content_type"] == "image/jpeg" and payload["normalized"] is True
    assert (payload["width"], payload["original_bytes"]) == (600, len(data))


def test_an_object_over_the_byte_limit_is_the_named_error() -> None:
    # Given an object one byte over the limit / When serialized / Then ImageTooLargeError names both sizes
    data = png_bytes((32, 32))
    with pytest.raises(ImageTooLargeError, match=f"{len(data):,} bytes; the limit is {len(data) - 1:,}"):
        serialize(data, max_image_bytes=len(data) - 1)


def test_an_image_over_the_pixel_limit_is_an_invalid_image() -> None:
    # Given a 100x100 image and a limit of 9,999 pixels / Then the decoder refuses it by name
    with pytest.raises(InvalidImageError, match="100x100 pixels exceeds the limit of 9,999"):
        serialize(png_bytes((100, 100)), max_image_pixels=9_999)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InvalidImageError),
        (b"hello, not an image", InvalidImageError),
        (png_bytes()[:40], InvalidImageError),  # a truncated PNG
    ],
)
def test_bytes_that_are_not_a_decodable_image_are_named(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        serialize(data)


def test_an_image_format_outside_the_accepted_ones_is_named() -> None:
    # Given an ICO (Pillow reads it; the workflow does not accept it)
    with pytest.raises(UnsupportedImageFormatError, match="ICO"):
        serialize(encoded((16, 16), "ICO"), key="favicon.ico")


def test_a_missing_object_is_the_stores_named_error() -> None:
    store = InMemoryImageStore()
    with pytest.raises(ImageNotFoundError, match=r"s3://scones-local-images/gone\.png"):
        serialize_image(ImageRef(s3_bucket=BUCKET, s3_key="gone.png"), store, settings())
