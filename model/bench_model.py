"""Benchmark of the served model on one core: latency per image including decode, throughput, size,
and the model's cross-validated figures as recorded in its metadata.

    python -m model.bench_model [--model-dir DIR] [--iterations 2000]

Not a test: it prints figures for the README. Pins itself to one CPU where the OS allows it. Latency
is timed over real images in turn: CIFAR-100 thumbnails, and the real-photo development set as the
workflow delivers it to the endpoint (serialize's bytes: the original when it fits a state, else a
JPEG of at most 1024 px) and as uploaded (the original file, up to 2048 px).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from model.evaluate import DEFAULT_DATA_DIR
from model.inference import DEFAULT_MODEL_DIR, METADATA_FILE, SNIFF_CONTENT_TYPE, ImageClassifierModel

REAL_PHOTOS_DIR = DEFAULT_DATA_DIR.parents[1] / "real-photos-dev"


def machine_description() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc), {cpu}, Python {platform.python_version()}, {platform.system()}"


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to CPU {core}"
    return "not pinned (no sched_setaffinity on this OS)"


def sample_png() -> bytes:
    """A real 32x32 CIFAR PNG when the shared data is there, else a synthetic one of the same size."""
    real = sorted(DEFAULT_DATA_DIR.glob("*/*.png"))
    if real:
        return real[0].read_bytes()
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def cifar_images(limit: int = 200) -> list[bytes]:
    """Every fifth CIFAR image (both classes), when the shared data is here."""
    return [path.read_bytes() for path in sorted(DEFAULT_DATA_DIR.glob("*/*.png"))[::5][:limit]]


def real_photos() -> list[bytes]:
    """The real-photo development set as uploaded, when it is here."""
    return [path.read_bytes() for path in sorted(REAL_PHOTOS_DIR.glob("*/*")) if path.is_file()]


def as_delivered(uploads: list[bytes]) -> list[bytes]:
    """What serialize_image_data hands the endpoint for each upload (the workflow's own code)."""
    import base64

    from scones_common.logic.serialize import serialize_image
    from scones_common.models import ImageRef
    from scones_common.ports import StoredImage
    from scones_common.settings import SerializeSettings

    class Uploaded:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def fetch(self, bucket: str, key: str, max_bytes: int) -> StoredImage:
            return StoredImage(bucket, key, self.data)

    settings = SerializeSettings(idempotency_table_name="unused")
    ref = ImageRef(s3_bucket="bench", s3_key="photo.jpg")
    return [base64.b64decode(serialize_image(ref, Uploaded(data), settings).image_data) for data in uploads]


def cycle_calls(call: Callable[[bytes], object], bodies: list[bytes]) -> Callable[[], object]:
    position = [0]

    def next_call() -> object:
        body = bodies[position[0] % len(bodies)]
        position[0] += 1
        return call(body)

    return next_call


def time_calls(call: Callable[[], object], iterations: int, warmup: int = 50) -> list[float]:
    for _ in range(warmup):
        call()
    durations = []
    for _ in range(iterations):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def percentile_ms(durations: list[float], q: float) -> float:
    return float(np.percentile(durations, q) * 1000.0)


def report_latency(label: str, durations: list[float]) -> None:
    print(
        f"{label:<52} p50 {percentile_ms(durations, 50):6.2f} ms  "
        f"p95 {percentile_ms(durations, 95):6.2f} ms  {1.0 / statistics.fmean(durations):6.0f} images/s"
    )


def latency_sets(iterations: int) -> list[tuple[str, list[bytes], int]]:
    """(label, bodies, calls) for each set of images here; each body is timed in turn."""
    sets: list[tuple[str, list[bytes], int]] = []
    cifar = cifar_images()
    if cifar:
        sets.append((f"predict() incl. decode, {len(cifar)} CIFAR PNGs", cifar, iterations))
    photos = real_photos()
    if photos:
        delivered = as_delivered(photos)
        sets.append(
            (f"predict() incl. decode, {len(photos)} photos as delivered", delivered, 2 * len(photos))
        )
        sets.append((f"predict() incl. decode, {len(photos)} photos as uploaded", photos, 2 * len(photos)))
    if not sets:
        sets.append(("predict() incl. decode, 1 synthetic PNG", [sample_png()], iterations))
    return sets


def model_figures(metadata: dict[str, Any]) -> list[str]:
    """The recorded figures: cross-validation, calibration, training time (not re-measured here)."""
    calibration = metadata.get("calibration", {})
    oof = calibration.get("out_of_fold", {})
    training = metadata.get("training", {})
    lines = [
        f"recipe: {training.get('recipe_name')}; {metadata.get('architecture', '')}",
        f"training: {training.get('seconds')} s on {training.get('threads')} threads, "
        f"{training.get('n_train')} images",
    ]
    if oof:
        threshold = oof.get("threshold", {})
        low, high = oof.get("oof_accuracy_95", [None, None])
        lines += [
            f"cross-validation ({calibration.get('source')}): accuracy {oof.get('oof_accuracy')} "
            f"(95 % {low}–{high}), per fold {oof.get('fold_accuracy_mean')} ± {oof.get('fold_accuracy_std')}",
            f"calibration: temperature {calibration.get('temperature')}; "
            f"threshold {calibration.get('threshold')} decides {threshold.get('share_decided', 0):.1%} "
            f"out of fold with {threshold.get('errors_among_decided')} errors among "
            f"{threshold.get('decided')} ({threshold.get('error_rate_among_decided', 0):.2%}, "
            f"95 % upper {threshold.get('error_rate_upper_95', 0):.2%})",
        ]
        if "check_accuracy_mean" in oof:
            lines.append(
                f"real-photo development set (fold models, mean): accuracy {oof['check_accuracy_mean']}"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64, help="batch size for the throughput figure")
    args = parser.parse_args(argv)

    print(f"machine: {machine_description()}; {pin_to_one_core()}; 1 onnxruntime thread")
    model = ImageClassifierModel.load(args.model_dir, intra_op_threads=1)
    for label, bodies, calls in latency_sets(args.iterations):
        report_latency(
            label, time_calls(cycle_calls(lambda b: model.predict(b, SNIFF_CONTENT_TYPE), bodies), calls)
        )
    tensor = model.to_input(np.zeros((1, *model.input_size[::-1], 3), dtype=np.uint8))
    report_latency("bare onnxruntime run, 1 image", time_calls(lambda: model.run(tensor), args.iterations))
    batch_tensor = np.repeat(tensor, args.batch, axis=0)
    batch_durations = time_calls(
        lambda: model.run(batch_tensor), max(20, args.iterations // args.batch), warmup=5
    )
    report_latency(
        f"bare onnxruntime run, batch {args.batch} (per image)", [d / args.batch for d in batch_durations]
    )

    files = [model.metadata.get("model_file", "classifier.onnx"), METADATA_FILE]
    sizes = {name: (args.model_dir / name).stat().st_size for name in files}
    print(
        "artifact: "
        + ", ".join(f"{name} {size:,} bytes" for name, size in sizes.items())
        + f"; {sum(sizes.values()) / 2**20:.2f} MiB in all"
    )
    for line in model_figures(model.metadata):
        print(line)


if __name__ == "__main__":
    main()
