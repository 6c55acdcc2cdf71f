"""The workflow's performance in one table, measured side by side in one run (issue 6).

    python -m bench            # the figures in docs/BENCHMARKS.md (about 2 minutes on 2 cores)
    python -m bench --quick    # few repetitions, 20 images: proves the benchmark still runs (CI)
    python -m bench --cold-only [--outside-lambda] [--repetitions N]   # the cold-start rows alone

Rows: each handler's cold start (import + first invocation, python -I -S on pip --target folders of the
requirement files, bench.cold_env) next to a bare boto3 handler, warm handler latency, end-to-end latency
through the real ASL on moto with the harness's share of it, batch throughput, the model on one core,
and the unzipped package sizes from `sam build` (or of the scratch folders without one). Medians over
repetitions; p95 where there are enough.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.cold_env import tree_bytes
from bench.cold_start import BARE, FLOOR, FUNCTION_ORDER, LAYER_CODE, ColdStartRun, measure_cold_starts
from harness.local.lambda_runtime import InvocationResult, LocalFunction
from harness.local.template import PROJECT_ROOT, Stack, read_stack
from harness.local.workflow import LocalWorkflow
from harness.ops.batch import run_batch as run_distributed_map
from harness.samples import bundled_images
from model.bench_model import (
    cycle_calls,
    latency_sets,
    machine_description,
    model_figures,
    percentile_ms,
    pin_to_one_core,
    time_calls,
)
from model.inference import (
    DEFAULT_MODEL_DIR,
    METADATA_FILE,
    MODEL_FILE,
    SNIFF_CONTENT_TYPE,
    ImageClassifierModel,
)

COLD_START_GOAL = 1.25
# Every top-class probability of a two-class model is at least 0.5: every execution succeeds, so the
# throughput is that of the full path (all three functions), not of early failures.
BENCH_THRESHOLD = 0.5
BUILD_DIR = PROJECT_ROOT / ".aws-sam" / "build"
LAYER_ID = "CommonLayer"


@dataclass(frozen=True)
class Profile:
    name: str
    cold_repetitions: int
    warm_iterations: int
    images: int
    model_iterations: int


FULL = Profile("full", cold_repetitions=11, warm_iterations=100, images=200, model_iterations=2000)
QUICK = Profile("quick", cold_repetitions=2, warm_iterations=10, images=20, model_iterations=200)


@dataclass
class Row:
    measure: str
    result: str
    detail: str = ""


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, measure: str, result: str, detail: str = "") -> None:
        self.rows.append(Row(measure, result, detail))

    def render(self) -> str:
        header = Row("Measure", "Result", "Detail")
        widths = [
            max(len(getattr(r, c)) for r in [header, *self.rows]) for c in ("measure", "result", "detail")
        ]

        def line(row: Row) -> str:
            cells = (row.measure, row.result, row.detail)
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        separator = "| " + " | ".join("-" * w for w in widths) + " |"
        return "\n".join([line(header), separator, *(line(r) for r in self.rows)])


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def ordered_functions(stack: Stack) -> list[str]:
    names = [spec.code_dir.name for spec in stack.functions.values()]
    return [n for n in FUNCTION_ORDER if n in names] + sorted(n for n in names if n not in FUNCTION_ORDER)


# -- cold starts -------------------------------------------------------------------------------------------
def add_cold_starts(table: Table, run: ColdStartRun, repetitions: int) -> None:
    by_name = {r.name: r for r in run.results}
    bare = by_name.pop(BARE)
    floor = by_name.pop(FLOOR, None)
    table.add(
        "cold start: bare handler",
        f"import {bare.import_p50:.0f} ms + first invoke {bare.first_invoke_p50:.1f} ms",
        f"boto3 + S3 client only, the baseline; median of {repetitions} fresh interpreters "
        f"(python -I -S, Python {run.interpreter.version})",
    )
    for name, result in by_name.items():
        ratio = result.total_p50 / bare.total_p50
        verdict = "met" if ratio <= COLD_START_GOAL else "NOT met"
        table.add(
            f"cold start: {name}",
            f"{result.total_p50:.0f} ms = {ratio:.2f}× bare",
            f"import {result.import_p50:.0f} ms (CPU {result.import_cpu_p50:.0f} ms, "
            f"{result.import_p50 / bare.import_p50:.2f}× bare) "
            f"+ first invoke {result.first_invoke_p50:.1f} ms; "
            f"goal ≤ {COLD_START_GOAL}× of import + first invoke {verdict}",
        )
    if floor is not None:
        table.add(
            "cold start: floor of serialize_image_data",
            f"{floor.total_p50:.0f} ms = {floor.total_p50 / bare.total_p50:.2f}× bare",
            "its work for an upload with none of its code (bench/floor_serialize.py: S3 + DynamoDB clients, "
            "Pillow decode, Powertools + X-Ray, no pydantic): no goal below this ratio can be met for it",
        )


# -- the local workflow: warm handlers, end to end, batch -------------------------------------------------
@dataclass
class HandlerClock:
    """Wraps each LocalFunction.invoke (and the endpoint) to add up the time spent in handlers."""

    handler_ms: float = 0.0
    model_ms: float = 0.0

    @contextmanager
    def attached(self, workflow: LocalWorkflow) -> Iterator[None]:
        saved: list[tuple[Any, Callable[..., Any]]] = []
        for function in workflow.functions.values():
            saved.append((function, function.invoke))
            function.invoke = self._timed_function(function.invoke)  # type: ignore[method-assign, assignment]
        endpoint = workflow.endpoint
        if endpoint is not None:
            saved.append((endpoint, endpoint.invoke))
            endpoint.invoke = self._timed_endpoint(endpoint.invoke)  # type: ignore[method-assign, assignment]
        try:
            yield
        finally:
            for owner, original in saved:
                owner.invoke = original

    def _timed_function(self, invoke: Callable[[Any], InvocationResult]) -> Callable[[Any], InvocationResult]:
        def timed(event: Any) -> InvocationResult:
            result = invoke(event)
            self.handler_ms += result.duration_ms
            return result

        return timed

    def _timed_endpoint(self, invoke: Callable[[bytes, str], bytes]) -> Callable[[bytes, str], bytes]:
        def timed(body: bytes, content_type: str) -> bytes:
            started = time.perf_counter()
            try:
                return invoke(body, content_type)
            finally:
                self.model_ms += (time.perf_counter() - started) * 1000.0

        return timed


def warm_latencies(workflow: LocalWorkflow, key: str, iterations: int) -> dict[str, list[float]]:
    """Each function alone, fed the previous one's real output; the first (cold) call is not counted."""
    event: Any = {"image_data": "", "s3_bucket": workflow.bucket, "s3_key": key}
    durations: dict[str, list[float]] = {}
    # The image path only: summarize_batch reads a batch's result files, not the previous step's output.
    for name in [n for n in ordered_functions(workflow.stack) if n in FUNCTION_ORDER]:
        function: LocalFunction = workflow.functions[workflow.stack.function_by_name(name).function_name]
        samples = []
        for attempt in range(iterations + 1):
            result = function.invoke(event)
            if result.function_error:
                raise RuntimeError(f"{name} failed during the benchmark: {result.payload[:500]!r}")
            if attempt:
                samples.append(result.duration_ms)
        durations[name] = samples
        event = result.json()
    return durations


@dataclass
class BatchResult:
    wall_ms: list[float]
    handler_ms: list[float]
    model_ms: float
    failed: int
    seconds: float


def run_batch(workflow: LocalWorkflow, keys: list[str]) -> BatchResult:
    clock = HandlerClock()
    wall, handler, failed = [], [], 0
    with clock.attached(workflow):
        started = time.perf_counter()
        for key in keys:
            before_handler = clock.handler_ms
            t0 = time.perf_counter()
            result = workflow.run(key)
            wall.append((time.perf_counter() - t0) * 1000.0)
            handler.append(clock.handler_ms - before_handler)
            failed += result.status != "SUCCEEDED"
        seconds = time.perf_counter() - started
    return BatchResult(wall, handler, clock.model_ms, failed, seconds)


def add_workflow(table: Table, profile: Profile) -> None:
    images = bundled_images()
    with LocalWorkflow(threshold=BENCH_THRESHOLD) as workflow:
        keys = [
            workflow.upload(images[i % len(images)].data, f"bench/{i:04d}-{images[i % len(images)].name}")
            for i in range(profile.images)
        ]
        warm = warm_latencies(workflow, keys[0], profile.warm_iterations)
        batch = run_batch(workflow, keys)
        # The same images again as one batch execution (a Distributed Map over the prefix, issue 5).
        distributed = run_distributed_map(workflow, "bench/")
    # And with one child at a time: in one local process more concurrency only adds GIL contention.
    one_child = {"BatchMaxConcurrency": "1"}
    with LocalWorkflow(threshold=BENCH_THRESHOLD, parameter_overrides=one_child) as workflow:
        for i in range(profile.images):
            workflow.upload(images[i % len(images)].data, f"bench/{i:04d}-{images[i % len(images)].name}")
        one_at_a_time = run_distributed_map(workflow, "bench/")
    for name, samples in warm.items():
        table.add(
            f"warm handler: {name}",
            f"p50 {p(samples, 50):.2f} ms, p95 {p(samples, 95):.2f} ms",
            f"{len(samples)} invocations through LocalFunction, moto S3"
            + (", local ONNX endpoint" if name == "classify_image" else ""),
        )
    overhead = 1.0 - sum(batch.handler_ms) / sum(batch.wall_ms)
    table.add(
        "end to end per image",
        f"p50 {p(batch.wall_ms, 50):.0f} ms, p95 {p(batch.wall_ms, 95):.0f} ms",
        f"{len(batch.wall_ms)} executions of the real ASL on moto (start to terminal state, history read); "
        f"{batch.failed} not SUCCEEDED",
    )
    table.add(
        "harness share of end to end",
        f"{overhead:.0%}",
        f"handlers p50 {p(batch.handler_ms, 50):.1f} ms per image (of which the model "
        f"{batch.model_ms / len(batch.wall_ms):.1f} ms); the rest is moto's interpreter, S3 and polling",
    )
    table.add(
        f"batch throughput, {len(keys)} images",
        f"{len(keys) / batch.seconds:.1f} images/s",
        f"sequential executions, one at a time, {batch.seconds:.1f} s in all (uploads not timed)",
    )
    for run in (distributed, one_at_a_time):
        table.add(
            f"batch throughput, Distributed Map, {len(keys)} images, "
            f"MaxConcurrency {run.map_run.get('maxConcurrency')}",
            f"{run.images_per_second:.1f} images/s",
            f"one batch execution on moto, start to summary, {run.seconds:.1f} s in all; "
            f"{run.count('failed')} failed; labels {run.summary.get('labels')}",
        )


# -- the model --------------------------------------------------------------------------------------------
def add_model(table: Table, profile: Profile) -> None:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pinned = pin_to_one_core()
    timed: list[tuple[str, list[float]]] = []
    try:
        model = ImageClassifierModel.load(DEFAULT_MODEL_DIR, intra_op_threads=1)
        # Real images in turn: CIFAR thumbnails and, when the development set is here, real photos as
        # the workflow delivers them to the endpoint and as uploaded (see model/bench_model.py).
        for label, bodies, calls in latency_sets(profile.model_iterations):
            predict = cycle_calls(lambda b: model.predict(b, SNIFF_CONTENT_TYPE), bodies)
            timed.append((label, time_calls(predict, min(calls, profile.model_iterations), warmup=20)))
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    for label, durations in timed:
        table.add(
            f"model inference, {label}",
            f"p50 {percentile_ms(durations, 50):.2f} ms, p95 {percentile_ms(durations, 95):.2f} ms",
            f"{len(durations)} calls, {pinned}, 1 onnxruntime thread; targets 10 ms / 25 ms",
        )
    sizes = {name: (DEFAULT_MODEL_DIR / name).stat().st_size for name in (MODEL_FILE, METADATA_FILE)}
    table.add(
        "model artifact",
        f"{sum(sizes.values()) / 1e6:.2f} MB",
        ", ".join(f"{name} {size:,} bytes" for name, size in sizes.items()) + "; target 30 MB",
    )
    for line in model_figures(model.metadata):
        measure, _, result = line.partition(": ")
        table.add(f"model {measure}", result, "recorded at training (metadata.json), not re-measured")


# -- package sizes ----------------------------------------------------------------------------------------
def megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def stale_files(source: Path, built: Path) -> list[str]:
    """Source files whose built copy is missing or different: the build predates them."""
    stale = []
    for path in sorted(source.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            copy = built / path.relative_to(source)
            if not copy.is_file() or copy.read_bytes() != path.read_bytes():
                stale.append(str(path.relative_to(PROJECT_ROOT)))
    return stale


def add_scratch_package_sizes(table: Table, stack: Stack, cold: ColdStartRun) -> None:
    """Without a sam build: the folders the cold starts imported from (pip --target for this platform)."""
    assert cold.layer_packages is not None
    layer_bytes = tree_bytes(cold.layer_packages) + tree_bytes(LAYER_CODE)
    for name in ordered_functions(stack):
        own = tree_bytes(stack.function_by_name(name).code_dir) + tree_bytes(cold.package_folders[name])
        table.add(
            f"package: {name}",
            megabytes(own),
            f"unzipped code + pip --target of its requirements; "
            f"with the layer {(own + layer_bytes) / 1e6:.1f} MB of Lambda's 250 MB",
        )
    table.add(
        "package: layer",
        megabytes(layer_bytes),
        f"layers/common + pip --target of its requirements, Python {cold.interpreter.version} on "
        f"{platform.machine()}, not a sam build (arm64 wheels differ a little; make sam-checks for those)",
    )


def add_package_sizes(table: Table, stack: Stack, cold: ColdStartRun) -> None:
    layer = BUILD_DIR / LAYER_ID
    if not layer.is_dir():
        add_scratch_package_sizes(table, stack, cold)
        return
    built = datetime.datetime.fromtimestamp(layer.stat().st_mtime, datetime.UTC).strftime(
        "%Y-%m-%d %H:%M UTC"
    )
    layer_bytes = tree_bytes(layer)
    for name in ordered_functions(stack):
        spec = stack.function_by_name(name)
        folder = BUILD_DIR / spec.logical_id
        if not folder.is_dir():
            table.add(f"package: {name}", "run make sam-checks first", f"{folder.name} not built")
            continue
        own = tree_bytes(folder)
        stale = stale_files(spec.code_dir, folder)
        table.add(
            f"package: {name}",
            megabytes(own),
            f"unzipped; with the layer {(own + layer_bytes) / 1e6:.1f} MB of Lambda's 250 MB"
            + (f"; STALE build ({stale[0]} changed since): run make sam-checks" if stale else ""),
        )
    stale = stale_files(PROJECT_ROOT / "layers" / "common", layer / "python")
    table.add(
        "package: layer",
        megabytes(layer_bytes),
        f"{LAYER_ID} unzipped, sam build of {built}"
        + (f"; STALE build ({stale[0]} changed since): run make sam-checks" if stale else ""),
    )


# -- main -------------------------------------------------------------------------------------------------
def build_table(
    profile: Profile, cold_only: bool = False, lambda_like: bool = True
) -> tuple[Table, ColdStartRun]:
    stack = read_stack()
    table = Table()
    # Cold starts first, while this process has nothing running next to the fresh interpreters.
    cold = measure_cold_starts(stack, profile.cold_repetitions, lambda_like)
    add_cold_starts(table, cold, profile.cold_repetitions)
    if not cold_only:
        add_workflow(table, profile)
        add_model(table, profile)
        add_package_sizes(table, stack, cold)
    return table, cold


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few repetitions and 20 images (CI)")
    parser.add_argument("--cold-only", action="store_true", help="the cold-start rows only")
    parser.add_argument(
        "--outside-lambda",
        action="store_true",
        help="cold starts without LAMBDA_TASK_ROOT and the X-Ray variables (Tracer off): the gap in docs",
    )
    parser.add_argument(
        "--repetitions", type=int, help="fresh interpreters per function (default 11, quick 2)"
    )
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.repetitions:
        profile = dataclasses.replace(profile, cold_repetitions=args.repetitions)

    started = time.perf_counter()
    table, cold = build_table(profile, args.cold_only, not args.outside_lambda)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"scones bench ({profile.name}), {now}")
    print(f"machine: {machine_description()} ({platform.machine()})")
    print(
        f"cold starts: {cold.interpreter.executable} "
        f"(Python {cold.interpreter.version}: {cold.interpreter.source})"
    )
    if args.outside_lambda:
        print("cold starts OUTSIDE a Lambda-like environment: no LAMBDA_TASK_ROOT, no X-Ray variables")
    print(table.render())
    print(f"measured in {time.perf_counter() - started:.0f} s")
