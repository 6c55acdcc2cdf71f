"""The sample images `scones demo` runs: real CIFAR-100 images, one large photo, one impostor."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFilter

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    expected: str | None  # the true class, where known


def bundled_images() -> list[Sample]:
    """The CIFAR-100 training images under harness/samples/<class>/ (the folder is the true class)."""
    return [
        Sample(path.name, path.read_bytes(), path.parent.name) for path in sorted(SAMPLES_DIR.glob("*/*.png"))
    ]


def large_photo(source: Sample, size: tuple[int, int] = (4000, 3000)) -> Sample:
    """A several-MB JPEG made from a sample: too big for a Step Functions state until serialize shrinks it."""
    with Image.open(io.BytesIO(source.data)) as small:
        photo = small.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    # Sensor-like grain so the JPEG is as heavy as a real photo of that size.
    grain = Image.effect_noise(size, 48).filter(ImageFilter.GaussianBlur(0.6))
    photo = Image.blend(photo, Image.merge("RGB", (grain, grain, grain)), 0.12)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=95)
    return Sample(f"{Path(source.name).stem}-4000x3000.jpg", buffer.getvalue(), source.expected)


def impostor() -> Sample:
    """Text bytes named .png: the workflow must end it with a named error, not a traceback."""
    return Sample("not-an-image.png", b"<html><body>this is not a picture</body></html>\n", None)


def demo_samples() -> list[Sample]:
    images = bundled_images()
    return [*images, large_photo(images[0]), impostor()]
