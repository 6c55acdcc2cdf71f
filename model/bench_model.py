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


def held_out_images(model: ImageClassifierModel) -> list[bytes]:
    """The validation split recorded in the metadata, when the training data is here."""
    names = model.metadata.get("validation", {}).get("files", [])
    paths = [DEFAULT_DATA_DIR / name for name in names]
    return [path.read_bytes() for path in paths if path.is_file()]


def decode(model: ImageClassifierModel, body: bytes) -> np.ndarray:
    from model.inference import decode_to_array

    return decode_to_array(body, "image/png", model.input_size)[np.newaxis]


def cycle_calls(call: Callable[[bytes], object], bodies: list[bytes]) -> Callable[[], object]:
    position = [0]

    def next_call() -> object:
        body = bodies[position[0] % len(bodies)]
        position[0] += 1
        return call(body)

    return next_call


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
    # With a cascade the cost depends on the image (unsure ones also run the teacher): time each
    # held-out image in turn, so p50 and p95 are over the real mix.
    bodies = held_out_images(model)
    if bodies:
        routed = sum(bool(model.routed(model.to_input(decode(model, b)))[0]) for b in bodies)
        durations = time_calls(
            cycle_calls(lambda b: model.predict(b, "image/png"), bodies), max(args.iterations, len(bodies))
        )
        report_latency(f"predict() over the {len(bodies)} held-out images", durations)
        share = f"{routed} of {len(bodies)} ({routed / len(bodies):.0%})"
        print(f"{'':<42} {share} answered by the cascade's teacher")
    report_latency("bare onnxruntime run, 1 image", time_calls(lambda: model.run(tensor), args.iterations))
    batch_durations = time_calls(
        lambda: model.run(batch_tensor), max(50, args.iterations // args.batch), warmup=10
    )
    per_image = [d / args.batch for d in batch_durations]
    report_latency(f"bare onnxruntime run, batch {args.batch} (per image)", per_image)

    metadata = model.metadata
    validation, training = metadata.get("validation", {}), metadata.get("training", {})
    files = [
        MODEL_FILE,
        METADATA_FILE,
        *([metadata["cascade"]["teacher_file"]] if "cascade" in metadata else []),
    ]
    sizes = {name: (args.model_dir / name).stat().st_size for name in files}
    print(
        "artifact: "
        + ", ".join(f"{name} {size:,} bytes" for name, size in sizes.items())
        + f"; {sum(sizes.values()) / 2**20:.2f} MiB in all"
    )
    print(
        f"training: {training.get('seconds')} s on {training.get('threads')} threads, "
        f"{training.get('epochs')} epochs; "
        f"validation accuracy {validation.get('accuracy')} on n={validation.get('n')}"
    )


if __name__ == "__main__":
    main()
