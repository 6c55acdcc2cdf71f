"""Run the batch state machine (a Distributed Map over an S3 prefix) locally and read what it wrote."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.ops.execution import BATCH_STATE_MACHINE_NAME, TERMINAL_STATUSES, ExecutionResult, WorkflowTarget

# (objects finished, objects under the prefix): finished counts every child that reached an end.
ProgressCallback = Callable[[int, int], None]


@dataclass
class BatchRun:
    """One batch run: the summary summarize_batch returned, every object's outcome, how long it took."""

    prefix: str
    execution: ExecutionResult
    objects: int  # listed under the prefix when the batch started
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)  # summarize_batch's output (empty if it failed)
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # read back from the result files
    map_run: dict[str, Any] = field(default_factory=dict, repr=False)  # describe_map_run at the end

    @property
    def status(self) -> str:
        return self.execution.status

    @property
    def images_per_second(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else 0.0

    def count(self, name: str) -> int:
        return int(self.summary.get(name, 0))


def run_batch(
    workflow: WorkflowTarget,
    prefix: str,
    *,
    progress: ProgressCallback | None = None,
    poll_seconds: float = 0.2,
    timeout_seconds: float = 3600.0,
) -> BatchRun:
    """Classify every object under `prefix` of the bucket with the batch state machine (local or deployed)."""
    arn = workflow.state_machine_arns[BATCH_STATE_MACHINE_NAME]
    objects = count_objects(workflow, prefix)
    if objects == 0:
        # AWS runs an empty Map; moto 5.2.5's listObjectsV2 reader fails on a listing without Contents.
        raise ValueError(f"no objects under s3://{workflow.bucket}/{prefix}")
    started = time.perf_counter()
    execution_arn = workflow.sfn.start_execution(
        stateMachineArn=arn,
        name=f"batch-{uuid.uuid4().hex[:16]}",
        input=json.dumps({"s3_bucket": workflow.bucket, "prefix": prefix}),
    )["executionArn"]

    deadline = time.monotonic() + timeout_seconds
    map_run: dict[str, Any] = {}
    while True:
        status = workflow.sfn.describe_execution(executionArn=execution_arn)["status"]
        map_run = _map_run(workflow, execution_arn) or map_run
        if progress is not None and map_run:
            progress(_finished(map_run), objects)
        if status in TERMINAL_STATUSES or time.monotonic() > deadline:
            break
        time.sleep(poll_seconds)
    # wait() reads the execution's end (and stops it past the deadline) as every other run does.
    result = workflow.wait(execution_arn, timeout_seconds=0.0)
    seconds = time.perf_counter() - started
    if progress is not None and map_run:
        progress(_finished(map_run), objects)
    summary = result.output if result.status == "SUCCEEDED" and result.output else {}
    return BatchRun(
        prefix=prefix,
        execution=result,
        objects=objects,
        seconds=seconds,
        summary=summary,
        outcomes=read_outcomes(workflow, summary.get("manifest", "")),
        map_run=map_run,
    )


def count_objects(workflow: WorkflowTarget, prefix: str) -> int:
    pages = workflow.s3.get_paginator("list_objects_v2").paginate(Bucket=workflow.bucket, Prefix=prefix)
    return sum(page.get("KeyCount", 0) for page in pages)


def read_outcomes(workflow: WorkflowTarget, manifest_uri: str) -> list[dict[str, Any]]:
    """Every child's outcome from the ResultWriter files (what summarize_batch counted), in key order."""
    if not manifest_uri.startswith("s3://"):
        return []
    bucket, _, key = manifest_uri.removeprefix("s3://").partition("/")
    manifest = json.loads(workflow.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    outcomes: list[dict[str, Any]] = []
    for status, files in manifest["ResultFiles"].items():
        for file in files:
            for entry in json.loads(workflow.s3.get_object(Bucket=bucket, Key=file["Key"])["Body"].read()):
                if status == "SUCCEEDED":
                    outcomes.append(json.loads(entry["Output"]))
                else:
                    outcomes.append(
                        {"s3_key": entry.get("Name"), "status": status, "error": entry.get("Error")}
                    )
    return sorted(outcomes, key=lambda outcome: str(outcome.get("s3_key")))


def _map_run(workflow: WorkflowTarget, execution_arn: str) -> dict[str, Any]:
    try:
        runs = workflow.sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
        if not runs:
            return {}
        described = workflow.sfn.describe_map_run(mapRunArn=runs[-1]["mapRunArn"])
    except Exception:  # moto answers with an AttributeError until the execution's worker has started
        return {}
    return {k: v for k, v in described.items() if k != "ResponseMetadata"}


def _finished(map_run: dict[str, Any]) -> int:
    counts = map_run.get("itemCounts", {})
    return int(sum(counts.get(name, 0) for name in ("succeeded", "failed", "timedOut", "aborted")))
