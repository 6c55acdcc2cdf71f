"""A longer fuzz run of the image decoding path than CI's: prints executions, seconds and crashes.

Hypothesis mutates real seed images (bit flips, byte overwrites, truncation, chunk splicing) and feeds
them to the serialize step's decoder and to the model server. Anything but the two named errors is a
crash. Run: `make fuzz` (FUZZ_SECONDS=300 by default) or `python -m tests.fuzz --seconds 60`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from scones_common.exceptions import InvalidImageError, UnsupportedImageFormatError
from scones_common.images import decode_image

NAMED_ERRORS = (InvalidImageError, UnsupportedImageFormatError)


def seed_images() -> list[bytes]:
    noise = Image.effect_noise((48, 40), 60).convert("RGB")
    seeds = []
    for fmt, mode in (
        ("PNG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "P"),
        ("JPEG", "RGB"),
        ("GIF", "P"),
        ("WEBP", "RGB"),
        ("BMP", "RGB"),
        ("TIFF", "RGB"),
        ("PNG", "I;16"),
    ):
        buffer = io.BytesIO()
        image = noise.convert("L").convert("I;16") if mode == "I;16" else noise.convert(mode)
        image.save(buffer, format=fmt)
        seeds.append(buffer.getvalue())
    return seeds


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["flip", "byte", "cut", "splice", "insert"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "splice":
            end = draw(st.integers(at, min(len(data), at + 64)))
            data[at:at] = data[at:end]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@dataclass
class FuzzReport:
    executions: int = 0
    seconds: float = 0.0
    crashes: list[str] = field(default_factory=list)


def _targets() -> list[Callable[[bytes], object]]:
    from model.inference import ImageClassifierModel

    model = ImageClassifierModel.load()
    return [decode_image, lambda data: model.invoke(data, "application/x-image")]


def fuzz(seconds: float, batch: int = 500) -> FuzzReport:
    report = FuzzReport()
    seeds = seed_images()
    targets = _targets()
    started = time.monotonic()

    @settings(max_examples=batch, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(mutated(seeds))
    def one(data: bytes) -> None:
        report.executions += 1
        for target in targets:
            with contextlib.suppress(*NAMED_ERRORS):  # any other exception is a crash
                target(data)

    while time.monotonic() - started < seconds:
        try:
            one()
        except Exception as exc:  # a crash: an exception that is not one of the named errors
            report.crashes.append(f"{type(exc).__name__}: {exc}")
            break
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    # Pillow warns about every corrupt TIFF tag it skips; the count of crashes is what matters here.
    warnings.simplefilter("ignore", UserWarning)
    report = fuzz(args.seconds)
    print(f"executions: {report.executions}")
    print(f"seconds: {report.seconds:.1f}")
    print(f"executions/second: {report.executions / max(report.seconds, 1e-9):.0f}")
    print(f"crashes: {len(report.crashes)}")
    for crash in report.crashes:
        print(f"  {crash}")
    return 1 if report.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
