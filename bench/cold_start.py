"""Cold starts: each handler's import, and first invocation, in a fresh interpreter, next to a bare one."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cold_env import Interpreter, choose_interpreter, packages_folder
from harness.local.eventbridge import transform
from harness.local.template import PROJECT_ROOT, REGION, FunctionSpec, Stack

CHILD = Path(__file__).with_name("cold_child.py")
BARE_HANDLER = Path(__file__).with_name("bare_handler.py")
BARE = "bare (boto3 + client)"
FLOOR_HANDLER = Path(__file__).with_name("floor_serialize.py")
FLOOR = "floor of serialize_image_data"
# The workflow's functions in the order of the state machine; the others after them.
FUNCTION_ORDER = ("serialize_image_data", "classify_image", "filter_inferences")
LAYER_CODE = PROJECT_ROOT / "layers" / "common"
LAYER_REQUIREMENTS = LAYER_CODE / "requirements.txt"
EVENTS = PROJECT_ROOT / "events"
SAMPLE_IMAGE = PROJECT_ROOT / "harness" / "samples" / "bicycle" / "bicycle_s_000051.png"
# As on Lambda with `Tracing: Active`: Powertools' Tracer is on (LAMBDA_TASK_ROOT set) and patches at
# import; segments go to a daemon address where nothing listens (UDP, so nothing waits for it).
_LAMBDA_ENVIRONMENT = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
}
# What only Lambda sets: without them Powertools turns its Tracer off (no LAMBDA_TASK_ROOT) and the X-Ray
# SDK, if it runs at all, has no daemon nor trace header. `--outside-lambda` drops them (the 0.3× gap).
LAMBDA_ONLY = ("LAMBDA_TASK_ROOT", "AWS_XRAY_DAEMON_ADDRESS", "AWS_XRAY_CONTEXT_MISSING", "_X_AMZN_TRACE_ID")


@dataclass
class ColdStart:
    name: str
    import_ms: list[float]
    import_cpu_ms: list[float]
    first_invoke_ms: list[float]

    @property
    def import_p50(self) -> float:
        return statistics.median(self.import_ms)

    @property
    def import_cpu_p50(self) -> float:
        return statistics.median(self.import_cpu_ms)

    @property
    def first_invoke_p50(self) -> float:
        return statistics.median(self.first_invoke_ms)

    @property
    def total_p50(self) -> float:
        return statistics.median(i + f for i, f in zip(self.import_ms, self.first_invoke_ms, strict=True))


def _child_environment(spec: FunctionSpec | None, lambda_like: bool) -> dict[str, str]:
    environment = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", **_LAMBDA_ENVIRONMENT}
    if spec is not None:
        environment.update(
            {
                **spec.environment,
                "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "_HANDLER": spec.handler,
            }
        )
    else:
        environment.update({"AWS_LAMBDA_FUNCTION_NAME": "bare", "LAMBDA_TASK_ROOT": str(BARE_HANDLER.parent)})
    if not lambda_like:
        for name in LAMBDA_ONLY:
            environment.pop(name, None)
    return environment


def upload_rule_input(stack: Stack) -> dict[str, Any]:
    """What the S3 upload rule (ImageUploadedRule) gives the state machine, and so serialize_image_data, for
    events/s3_object_created.json: with the object's etag and version, so that the first invocation also
    records the delivery (Powertools idempotency and a DynamoDB client), as every upload does."""
    rule = stack.resolver.resolve(stack.resources["ImageUploadedRule"]["Properties"])
    transformer = rule["Targets"][0]["InputTransformer"]
    event = json.loads((EVENTS / "s3_object_created.json").read_text())
    rendered: dict[str, Any] = json.loads(
        transform(event, transformer["InputPathsMap"], transformer["InputTemplate"])
    )
    return rendered


def _event_for(name: str, folder: Path, stack: Stack) -> Path:
    if name == "serialize_image_data":
        event = upload_rule_input(stack)
        event["__object_file__"] = str(SAMPLE_IMAGE)  # what the stubbed S3 answers
    elif name == BARE:
        event = json.loads((EVENTS / "serialize_image_data.json").read_text())
        event["__object_file__"] = str(SAMPLE_IMAGE)
    else:
        event = json.loads((EVENTS / f"{name}.json").read_text())
    if name == "summarize_batch":  # every GetObject answers a manifest of a batch with no result files
        manifest = folder / "manifest.json"
        manifest.write_text(json.dumps({"ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": []}}))
        event["__object_file__"] = str(manifest)
    path = folder / f"{name.split()[0]}.json"
    path.write_text(json.dumps(event))
    return path


@dataclass(frozen=True)
class ChildJob:
    app: Path
    event: Path
    search_path: list[Path]  # in front of the standard library, in Lambda's order
    environment: dict[str, str]


@dataclass
class ColdStartRun:
    interpreter: Interpreter
    results: list[ColdStart]
    # Function folder name -> its own pip --target packages; with layer_packages, what the child imported.
    package_folders: dict[str, Path] = field(default_factory=dict)
    layer_packages: Path | None = None


def child_command(interpreter: Interpreter, job: ChildJob, *options: str) -> list[str]:
    """-I: no user site, no PYTHON* variables, no script folder on sys.path; -S: no site-packages at all."""
    search = os.pathsep.join(str(p) for p in job.search_path)
    return [interpreter.executable, "-I", "-S", *options, str(CHILD), str(job.app), str(job.event), search]


def _run_child(interpreter: Interpreter, job: ChildJob) -> tuple[float, float, float]:
    done = subprocess.run(
        child_command(interpreter, job),
        env=job.environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_COLD_RESULT "):
            result = json.loads(line.removeprefix("BENCH_COLD_RESULT "))
            return (
                float(result["import_ms"]),
                float(result["import_cpu_ms"]),
                float(result["first_invoke_ms"]),
            )
    raise RuntimeError(f"cold start of {job.app} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def cold_start_jobs(
    stack: Stack, folder: Path, interpreter: Interpreter, lambda_like: bool = True
) -> tuple[dict[str, ChildJob], dict[str, Path], Path]:
    """One job per function (the workflow's three first), then serialize's floor and the bare handler."""
    specs = sorted(stack.functions.values(), key=lambda s: s.logical_id)
    order = [s.code_dir.name for s in specs]
    order = [n for n in FUNCTION_ORDER if n in order] + [n for n in order if n not in FUNCTION_ORDER]
    layer_packages = packages_folder(LAYER_REQUIREMENTS, interpreter)
    jobs: dict[str, ChildJob] = {}
    own_packages: dict[str, Path] = {}
    for name in order:
        spec = stack.function_by_name(name)
        app = spec.code_dir / f"{spec.handler.rpartition('.')[0]}.py"
        own_packages[name] = packages_folder(spec.code_dir / "requirements.txt", interpreter)
        jobs[name] = ChildJob(
            app,
            _event_for(name, folder, stack),
            [spec.code_dir, own_packages[name], LAYER_CODE, layer_packages],
            _child_environment(spec, lambda_like),
        )
    # serialize_image_data's work without its code, in its environment and package folders, on its event.
    serialize = jobs["serialize_image_data"]
    jobs[FLOOR] = ChildJob(
        FLOOR_HANDLER,
        serialize.event,
        [FLOOR_HANDLER.parent, own_packages["serialize_image_data"], layer_packages],
        serialize.environment,
    )
    # The bare handler's boto3 is the layer's pinned one (on Lambda it would be the runtime's).
    jobs[BARE] = ChildJob(
        BARE_HANDLER,
        _event_for(BARE, folder, stack),
        [BARE_HANDLER.parent, layer_packages],
        _child_environment(None, lambda_like),
    )
    return jobs, own_packages, layer_packages


def measure_cold_starts(stack: Stack, repetitions: int, lambda_like: bool = True) -> ColdStartRun:
    """Median-ready samples; handlers run interleaved so that a busy moment hurts all of them alike."""
    interpreter = choose_interpreter()
    with tempfile.TemporaryDirectory(prefix="scones-bench-") as folder:
        jobs, own_packages, layer_packages = cold_start_jobs(stack, Path(folder), interpreter, lambda_like)
        results = {name: ColdStart(name, [], [], []) for name in jobs}
        # One unmeasured run each, always: it writes the bytecode caches (see docs/BENCHMARKS.md on
        # bytecode on Lambda) and warms the page cache.
        for job in jobs.values():
            _run_child(interpreter, job)
        for _ in range(repetitions):
            for name, job in jobs.items():
                imported, imported_cpu, invoked = _run_child(interpreter, job)
                results[name].import_ms.append(imported)
                results[name].import_cpu_ms.append(imported_cpu)
                results[name].first_invoke_ms.append(invoked)
    return ColdStartRun(interpreter, list(results.values()), own_packages, layer_packages)
