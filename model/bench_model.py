"""Benchmark of the served model on one core: latency per image, throughput, artifact size.

    python -m model.bench_model [--model-dir DIR] [--iterations 2000]

Not a test: it prints figures for the README. Pins itself to one CPU where the OS allows it.
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

import numpy as np
from PIL import Image

from model.evaluate import DEFAULT_DATA_DIR
from model.inference import DEFAULT_MODEL_DIR, METADATA_FILE, MODEL_FILE, ImageClassifierModel


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


def time_calls(call: Callable[[], object], iterations: int, warmup: int = 100) -> list[float]:
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
        f"{label:<42} p50 {percentile_ms(durations, 50):6.3f} ms  "
        f"p95 {percentile_ms(durations, 95):6.3f} ms  {1.0 / statistics.fmean(durations):8.0f} images/s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64, help="batch size for the throughput figure")
    args = parser.parse_args(argv)

    print(f"machine: {machine_description()}; {pin_to_one_core()}")
    model = ImageClassifierModel.load(args.model_dir, intra_op_threads=1)
    body = sample_png()
    tensor = model.to_input(np.zeros((1, *model.input_size[::-1], 3), dtype=np.uint8))
    batch_tensor = np.repeat(tensor, args.batch, axis=0)

    report_latency(
        "predict() incl. PNG decode, 1 image",
        time_calls(lambda: model.predict(body, "image/png"), args.iterations),
    )
    report_latency("bare onnxruntime run, 1 image", time_calls(lambda: model.run(tensor), args.iterations))
    batch_durations = time_calls(
        lambda: model.run(batch_tensor), max(50, args.iterations // args.batch), warmup=10
    )
    per_image = [d / args.batch for d in batch_durations]
    report_latency(f"bare onnxruntime run, batch {args.batch} (per image)", per_image)

    metadata = model.metadata
    validation, training = metadata.get("validation", {}), metadata.get("training", {})
    size = (args.model_dir / MODEL_FILE).stat().st_size
    print(
        f"artifact: {MODEL_FILE} {size:,} bytes ({size / 2**20:.2f} MiB), "
        f"{METADATA_FILE} {(args.model_dir / METADATA_FILE).stat().st_size:,} bytes"
    )
    print(
        f"training: {training.get('seconds')} s on {training.get('threads')} threads, "
        f"{training.get('epochs')} epochs; "
        f"validation accuracy {validation.get('accuracy')} on n={validation.get('n')}"
    )


if __name__ == "__main__":
    main()
