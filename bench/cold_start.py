"""Cold starts: each handler's import, and first invocation, in a fresh interpreter, next to a bare one."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from harness.local.template import PROJECT_ROOT, REGION, FunctionSpec, Stack

CHILD = Path(__file__).with_name("cold_child.py")
BARE_HANDLER = Path(__file__).with_name("bare_handler.py")
BARE = "bare (boto3 + client)"
LAYER_REQUIREMENTS = PROJECT_ROOT / "layers" / "common" / "requirements.txt"
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


def deployed_top_level_modules(requirements: list[Path]) -> set[str]:
    """Top-level module names of the pinned requirements and everything they pull in, as installed here."""
    by_distribution: dict[str, set[str]] = {}
    for module, distributions in metadata.packages_distributions().items():
        for distribution in distributions:
            by_distribution.setdefault(_canonical(distribution), set()).add(module)
    pending = [
        Requirement(line.split("#")[0].strip())
        for path in requirements
        for line in path.read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    seen: set[str] = set()
    modules: set[str] = set()
    while pending:
        requirement = pending.pop()
        key = f"{_canonical(requirement.name)}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        modules |= by_distribution.get(_canonical(requirement.name), set())
        for text in metadata.requires(requirement.name) or []:
            dependency = Requirement(text)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in extras):
                pending.append(dependency)
    return modules


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _child_environment(spec: FunctionSpec | None) -> dict[str, str]:
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
    return environment


def _event_for(name: str, folder: Path) -> Path:
    if name in ("serialize_image_data", BARE):
        event = json.loads((EVENTS / "serialize_image_data.json").read_text())
        event["__object_file__"] = str(SAMPLE_IMAGE)  # what the stubbed S3 answers
    else:
        event = json.loads((EVENTS / f"{name}.json").read_text())
    if name == "summarize_batch":  # every GetObject answers a manifest of a batch with no result files
        manifest = folder / "manifest.json"
        manifest.write_text(json.dumps({"ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": []}}))
        event["__object_file__"] = str(manifest)
    path = folder / f"{name.split()[0]}.json"
    path.write_text(json.dumps(event))
    return path


def _run_child(
    app: Path, event: Path, hidden: str, environment: dict[str, str]
) -> tuple[float, float, float]:
    done = subprocess.run(
        [sys.executable, str(CHILD), str(app), str(event), hidden],
        env=environment,
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
    raise RuntimeError(f"cold start of {app} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def measure_cold_starts(stack: Stack, repetitions: int, warmup: bool = True) -> list[ColdStart]:
    """Median-ready samples; handlers run interleaved so that a busy moment hurts all of them alike."""
    specs = sorted(stack.functions.values(), key=lambda s: s.logical_id)
    order = [s.code_dir.name for s in specs]
    order = [n for n in ("serialize_image_data", "classify_image", "filter_inferences") if n in order] + [
        n for n in order if n not in ("serialize_image_data", "classify_image", "filter_inferences")
    ]
    layer = deployed_top_level_modules([LAYER_REQUIREMENTS]) | {"scones_common"}  # the layer's own code
    # Everything in the venv that is not the project's own code; what is not shipped gets hidden.
    installed = set(metadata.packages_distributions()) - {"scones_common", "harness", "model", "bench"}
    jobs: dict[str, tuple[Path, Path, str, dict[str, str]]] = {}
    with tempfile.TemporaryDirectory(prefix="scones-bench-") as folder:
        for name in order:
            spec = stack.function_by_name(name)
            app = spec.code_dir / f"{spec.handler.rpartition('.')[0]}.py"
            shipped = layer | deployed_top_level_modules([spec.code_dir / "requirements.txt"])
            hidden = ",".join(sorted(installed - shipped))
            jobs[name] = (app, _event_for(name, Path(folder)), hidden, _child_environment(spec))
        hidden = ",".join(sorted(installed - layer))
        jobs[BARE] = (BARE_HANDLER, _event_for(BARE, Path(folder)), hidden, _child_environment(None))
        results = {name: ColdStart(name, [], [], []) for name in jobs}
        for job in jobs.values() if warmup else ():  # one unmeasured run each: bytecode and page caches
            _run_child(*job)
        for _ in range(repetitions):
            for name, job in jobs.items():
                imported, imported_cpu, invoked = _run_child(*job)
                results[name].import_ms.append(imported)
                results[name].import_cpu_ms.append(imported_cpu)
                results[name].first_invoke_ms.append(invoked)
    return list(results.values())
