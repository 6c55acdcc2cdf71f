"""Safe decoding of untrusted bytes: every input ends as an RGB image or one named error."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from scones_common.exceptions import InvalidImageError, UnsupportedImageFormatError
from scones_common.images import decode_image, inspect_image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("mode", "fmt", "color"),
    [
        ("RGBA", "PNG", (255, 0, 0, 128)),
        ("L", "PNG", 128),
        ("P", "PNG", 3),
        ("I;16", "PNG", 40000),
        ("CMYK", "JPEG", (0, 255, 255, 0)),
        ("RGB", "GIF", (0, 0, 255)),
        ("RGB", "WEBP", (0, 0, 255)),
        ("RGB", "BMP", (0, 0, 255)),
        ("1", "TIFF", 1),
    ],
)
def test_every_mode_becomes_rgb(mode: str, fmt: str, color: object) -> None:
    data = encode(Image.new(mode, (40, 30), color), fmt)  # type: ignore[arg-type]
    image = decode_image(data)
    assert (image.mode, image.size) == ("RGB", (40, 30))


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    data = encode(Image.new("I;16", (8, 8), 32768), "PNG")
    red, green, blue = decode_image(data).getpixel((0, 0))  # type: ignore[misc]
    assert 120 <= red <= 136 and red == green == blue


def test_transparency_becomes_white() -> None:
    data = encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG")
    assert decode_image(data).getpixel((0, 0)) == (255, 255, 255)


def test_format_comes_from_the_bytes() -> None:
    data = encode(Image.new("RGB", (4, 4)), "JPEG")
    assert inspect_image(data).content_type == "image/jpeg"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, world", "not a recognised image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a recognised image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "corrupt or truncated PNG"),
    ],
)
def test_not_an_image_is_named(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        decode_image(data)


def test_corrupt_idat_is_named() -> None:
    data = bytearray(encode(Image.effect_noise((64, 64), 50).convert("RGB"), "PNG"))
    start = data.index(b"IDAT") + 20
    data[start : start + 40] = b"\x00" * 40
    with pytest.raises(InvalidImageError):
        decode_image(bytes(data))


def test_header_claiming_huge_dimensions_is_refused_before_decoding() -> None:
    # Given a PNG header that claims 100000 x 100000 pixels
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    with pytest.raises(InvalidImageError):
        decode_image(bytes(data))


def test_real_decompression_bomb_is_refused() -> None:
    # Given a 20000 x 20000 greyscale PNG: a few hundred KB that would decode to 400 MB
    bomb = encode(Image.new("L", (20_000, 20_000)), "PNG")
    assert len(bomb) < 1_000_000
    with pytest.raises(InvalidImageError, match=r"decompression bomb|exceeds the limit"):
        decode_image(bomb)


def test_pixel_limit_is_a_parameter() -> None:
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(InvalidImageError, match="exceeds the limit"):
        decode_image(data, max_pixels=9_999)


def test_known_but_unsupported_format_is_named() -> None:
    data = encode(Image.new("RGB", (16, 16)), "ICO")
    with pytest.raises(UnsupportedImageFormatError, match="ICO"):
        decode_image(data)


def test_format_outside_the_allowed_list_is_named() -> None:
    data = encode(Image.new("RGB", (16, 16)), "GIF")
    with pytest.raises(UnsupportedImageFormatError, match="GIF"):
        inspect_image(data, formats=("PNG", "JPEG"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes_never_escape_as_another_exception(data: bytes) -> None:
    # Any other exception type escapes and fails the test.
    with contextlib.suppress(InvalidImageError, UnsupportedImageFormatError):
        decode_image(data)


NOISE_PNG = encode(Image.effect_noise((24, 24), 40).convert("RGB"), "PNG")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_png_never_escapes_as_another_exception(data: st.DataObject) -> None:
    original = bytearray(NOISE_PNG)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(original)))
    with contextlib.suppress(InvalidImageError, UnsupportedImageFormatError):
        decode_image(bytes(original[:cut]))
