"""Safe decoding of untrusted image bytes, shared by the serialize step and the model server."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from scones_common.exceptions import InvalidImageError, UnsupportedImageFormatError
from scones_common.formats import CONTENT_TYPES, ENDPOINT_FORMATS, FORMAT_BY_CONTENT_TYPE, claimed_format

__all__ = ["CONTENT_TYPES", "ENDPOINT_FORMATS", "FORMAT_BY_CONTENT_TYPE", "decode_image", "inspect_image"]

# 50 megapixels: a 4000x3000 photo (12 MP) passes, a 20000x20000 decompression bomb does not.
DEFAULT_MAX_PIXELS = 50_000_000

# Every exception Pillow's decoders are known to raise on hostile bytes (a fuzz run found
# SyntaxError from PNG's chunk parser); all of them become one InvalidImageError.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    KeyError,
    ZeroDivisionError,
)


@dataclass(frozen=True)
class ImageInfo:
    """What the header says, read without decoding the pixels."""

    format: str
    width: int
    height: int
    mode: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def _open(data: bytes, formats: tuple[str, ...] | None) -> Image.Image:
    if not data:
        raise InvalidImageError("the image is empty (0 bytes)")
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"decompression bomb: {exc}") from exc
    except UnidentifiedImageError:
        claimed = claimed_format(data)
        if claimed is not None and (formats is None or claimed in formats):
            raise InvalidImageError(f"corrupt or truncated {claimed} ({len(data):,} bytes)") from None
        other = claimed or _identify_any_format(data)
        if other is not None:
            accepted = formats or tuple(CONTENT_TYPES)
            raise UnsupportedImageFormatError(
                f"{other} images are not supported here; send one of {', '.join(sorted(accepted))}"
            ) from None
        raise InvalidImageError(f"not a recognised image (starts with {data[:16]!r})") from None
    except _DECODE_ERRORS as exc:
        raise InvalidImageError(f"unreadable image header: {type(exc).__name__}: {exc}") from exc


def _identify_any_format(data: bytes) -> str | None:
    """Name the format when Pillow knows it but we do not accept it (e.g. ICO, PSD)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return str(image.format)
    except Exception:  # any failure here only means "not an image we can name"
        return None


def inspect_image(data: bytes, formats: tuple[str, ...] | None = None) -> ImageInfo:
    """Read format and size from the header only; raises InvalidImageError or UnsupportedImageFormatError."""
    with _open(data, formats or tuple(CONTENT_TYPES)) as image:
        return ImageInfo(format=str(image.format), width=image.width, height=image.height, mode=image.mode)


def decode_image(
    data: bytes, *, formats: tuple[str, ...] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Fully decode untrusted bytes to an RGB image (first frame, EXIF orientation applied).

    Raises InvalidImageError for anything that is not a decodable image of at most `max_pixels`,
    and UnsupportedImageFormatError for an image format outside `formats`.
    """
    image = _open(data, formats or tuple(CONTENT_TYPES))
    try:
        pixels = image.width * image.height
        if pixels > max_pixels:
            raise InvalidImageError(
                f"{image.format} of {image.width}x{image.height} pixels exceeds the limit of {max_pixels:,} "
                "pixels (a decompression bomb or an oversized image)"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            return to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImageError(f"decompression bomb: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise InvalidImageError(f"cannot decode {image.format}: {type(exc).__name__}: {exc}") from exc
    finally:
        image.close()


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (RGBA, LA, P, 1, L, I;16, I, F, CMYK, YCbCr) to 8-bit RGB."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # 16-bit greyscale: scale 0..65535 to 0..255 rather than clipping everything above 255 to white.
        high = image.getextrema()[1]
        scale = 1.0 / 257.0 if isinstance(high, int | float) and high > 255 else 1.0
        image = image.convert("F").point(lambda value: value * scale).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels become white, as an image viewer shows them.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def encode_jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
