"""The least confident captured images: picked once per distinct input, decoded safely, and laid out as
thumbnails on one PNG contact sheet (Pillow)."""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from monitor.charts import BELOW_THRESHOLD, GRID, INK, MUTED
from monitor.read import CapturedInference

GALLERY_SIZE = 12
THUMBNAIL = 128


@dataclass
class GalleryItem:
    record: CapturedInference
    thumbnail: Image.Image | None  # None when the captured input is not a decodable image
    repeats: int  # how many captured requests carried these same bytes


def least_confident(records: Sequence[CapturedInference], size: int = GALLERY_SIZE) -> list[GalleryItem]:
    """The least confident answers, one per distinct input (a repeated image appears once)."""
    seen: dict[str, list[CapturedInference]] = {}
    for record in records:
        if record.confidence is not None:
            seen.setdefault(hashlib.sha256(record.input_data).hexdigest(), []).append(record)

    def rank(record: CapturedInference) -> tuple[float, float]:
        return (record.confidence if record.confidence is not None else 0.0, record.time.timestamp())

    lowest = sorted(((min(group, key=rank), len(group)) for group in seen.values()), key=lambda p: rank(p[0]))
    return [GalleryItem(record, thumbnail(record.input_data), n) for record, n in lowest[:size]]


def thumbnail(data: bytes, size: int = THUMBNAIL) -> Image.Image | None:
    """The captured bytes decoded safely (they are untrusted) and fitted to size×size."""
    from scones_common.exceptions import InvalidImageError, UnsupportedImageFormatError
    from scones_common.images import decode_image

    try:
        image = decode_image(data)
    except (InvalidImageError, UnsupportedImageFormatError):
        return None
    scale = size / max(image.width, image.height)
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # Upscale CIFAR's 32×32 pixels as crisp blocks; shrink photos smoothly.
    resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.LANCZOS
    return image.resize(target, resample)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def placeholder(size: int = THUMBNAIL) -> Image.Image:
    """The tile shown for a captured input that is not a decodable image."""
    tile = Image.new("RGB", (size, size), "#eeeeee")
    ImageDraw.Draw(tile).text((size / 2, size / 2), "not an image", fill=MUTED, font=_font(13), anchor="mm")
    return tile


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _caption(item: GalleryItem) -> list[str]:
    record = item.record
    lines = [f"{record.label} {record.confidence:.3f}", f"{record.time:%Y-%m-%d %H:%M:%S} UTC"]
    if item.repeats > 1:
        lines.append(f"sent {item.repeats} times")
    return lines


def gallery_sheet(items: Sequence[GalleryItem], threshold: float, columns: int = 6) -> bytes:
    """The gallery as one PNG contact sheet, captions under each image."""
    tile_w, tile_h, pad = THUMBNAIL + 32, THUMBNAIL + 74, 10
    rows = max(1, math.ceil(len(items) / columns))
    width = columns * tile_w + pad * 2
    sheet = Image.new("RGB", (width, rows * tile_h + 44), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((pad + 6, 12), f"Least confident images (threshold {threshold:.2f})", fill=INK, font=_font(18))
    font = _font(12)
    if not items:
        draw.text((pad + 6, 60), "no answers with a confidence were captured", fill=MUTED, font=font)
    for index, item in enumerate(items):
        left = pad + (index % columns) * tile_w
        top = 44 + (index // columns) * tile_h
        image = item.thumbnail or placeholder()
        x = left + (tile_w - image.width) // 2
        y = top + (THUMBNAIL - image.height) // 2
        sheet.paste(image, (x, y))
        below = (item.record.confidence or 0.0) < threshold
        draw.rectangle(
            [x - 2, y - 2, x + image.width + 1, y + image.height + 1],
            outline=BELOW_THRESHOLD if below else GRID,
            width=2,
        )
        for n, line in enumerate(_caption(item)):
            color = (BELOW_THRESHOLD if below else INK) if n == 0 else MUTED
            draw.text(
                (left + tile_w / 2, top + THUMBNAIL + 8 + n * 16), line, fill=color, font=font, anchor="mt"
            )
    return png_bytes(sheet)
