"""Image formats by their magic bytes, without Pillow (the classify function ships without it), and the
format of the endpoint's answer."""

from __future__ import annotations

import json
import math

from scones_common.exceptions import InvalidImageError, InvalidModelOutputError, UnsupportedImageFormatError

# Pillow format name -> content type. PNG and JPEG go to the endpoint as they are (the built-in
# image-classification algorithm accepts only those two); the others are re-encoded as PNG first.
CONTENT_TYPES: dict[str, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
ENDPOINT_FORMATS = frozenset({"PNG", "JPEG"})
FORMAT_BY_CONTENT_TYPE = {content_type: fmt for fmt, content_type in CONTENT_TYPES.items()}

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def claimed_format(data: bytes) -> str | None:
    """The format the first bytes claim, or None; says nothing about whether the rest decodes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _MAGIC if data.startswith(magic)), None)


def endpoint_content_type(data: bytes) -> str:
    """The content type to send to the endpoint, from the bytes, never from the key's suffix."""
    fmt = claimed_format(data)
    if fmt is None:
        raise InvalidImageError(f"not a recognised image (starts with {data[:16]!r})")
    if fmt not in ENDPOINT_FORMATS:
        raise UnsupportedImageFormatError(f"the endpoint accepts PNG or JPEG, not {fmt}")
    return CONTENT_TYPES[fmt]


def parse_probabilities(raw: bytes, expected: int) -> list[float]:
    """The built-in algorithm's answer: a JSON array of one probability per class, summing to about 1."""
    try:
        values = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidModelOutputError(f"endpoint answered with non-JSON bytes: {raw[:80]!r}") from None
    if not isinstance(values, list) or len(values) != expected:
        raise InvalidModelOutputError(
            f"expected a JSON array of {expected} probabilities, got {str(values)[:80]}"
        )
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise InvalidModelOutputError(f"non-numeric probabilities: {values}")
    probabilities = [float(v) for v in values]
    if any(not math.isfinite(p) or p < 0.0 or p > 1.0 for p in probabilities):
        raise InvalidModelOutputError(f"probabilities must be finite and in [0, 1]: {probabilities}")
    if abs(sum(probabilities) - 1.0) > 0.01:
        raise InvalidModelOutputError(
            f"probabilities sum to {sum(probabilities):.4f}, not 1: {probabilities}"
        )
    return probabilities
