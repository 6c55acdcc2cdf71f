"""`python -m bench --quick` still runs and prints every row; the figures themselves are not asserted."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import PROJECT_ROOT

ROOT = PROJECT_ROOT
FUNCTIONS = ("serialize_image_data", "classify_image", "filter_inferences")
ROWS = (
    "cold start: bare handler",
    *(f"cold start: {name}" for name in (*FUNCTIONS, "release_delivery", "summarize_batch")),
    "cold start: floor of serialize_image_data",
    *(f"warm handler: {name}" for name in FUNCTIONS),
    "end to end per image",
    "harness share of end to end",
    "batch throughput, 20 images",
    "batch throughput, Distributed Map, 20 images, MaxConcurrency 10",
    "batch throughput, Distributed Map, 20 images, MaxConcurrency 1",
    "model inference, predict() incl. decode,",  # one row per image set (CIFAR, and photos when here)
    "model artifact",
    *(f"package: {name}" for name in FUNCTIONS),
    "package: layer",
)


@pytest.mark.slow
def test_quick_benchmark_prints_every_row() -> None:
    # Given the benchmark in its CI profile, in a process of its own (it pins itself to one core); the
    # first run on a machine pip-installs the requirement files into .scones/bench (cached after that)
    # When it runs
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    # Then it succeeds, names the machine and prints one table row per measure
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("machine: ") and "Python" in line for line in lines)
    rows = [line for line in lines if line.startswith("| ")]
    for measure in ROWS:
        assert any(row.startswith(f"| {measure} ") for row in rows), f"no row {measure!r} in\n{done.stdout}"
