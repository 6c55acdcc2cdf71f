"""One execution as the view needs it: DescribeExecution, the whole history (GetExecutionHistory,
paginated) and the definition it ran, fetched from any target and kept as JSON so that a local
execution can still be viewed after moto is gone."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.ops.execution import read_execution
from harness.ops.view.machine import Machine
from harness.ops.view.trace import trace_root

_DATES = ("startDate", "stopDate", "timestamp")
# A Distributed Map may run 10,000 children: the histories of the first ones only (one call or more each).
MAX_CHILD_HISTORIES = 100


@dataclass
class ChildExecution:
    """A Distributed Map child: its record when Step Functions keeps one (AWS), else the outcome the
    map run's ResultWriter wrote (moto keeps no child executions)."""

    name: str
    status: str
    input: str = ""
    output: str = ""
    error: str = ""
    cause: str = ""
    record: ExecutionRecord | None = None


@dataclass
class ExecutionRecord:
    described: dict[str, Any]
    history: list[dict[str, Any]]
    definition: str
    children: list[ChildExecution] = field(default_factory=list)
    # The execution's X-Ray trace: its segments put together (harness.ops.view.trace), with subsegments.
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def trace_id(self) -> str:
        """The execution's X-Ray trace (DescribeExecution's traceHeader, when tracing is enabled)."""
        return trace_root(self.described.get("traceHeader"))

    @property
    def arn(self) -> str:
        return str(self.described["executionArn"])

    @property
    def name(self) -> str:
        return self.arn.rsplit(":", 1)[-1]

    @property
    def status(self) -> str:
        return str(self.described["status"])

    def to_json(self) -> dict[str, Any]:
        return {
            "described": _dump(self.described),
            "history": [_dump(event) for event in self.history],
            "definition": self.definition,
            "children": [
                {
                    **{k: v for k, v in vars(c).items() if k != "record"},
                    "record": c.record and c.record.to_json(),
                }
                for c in self.children
            ],
            "segments": self.segments,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExecutionRecord:
        children = [
            ChildExecution(
                **{k: v for k, v in child.items() if k != "record"},
                record=cls.from_json(child["record"]) if child.get("record") else None,
            )
            for child in data.get("children", [])
        ]
        return cls(
            described=_load(data["described"]),
            history=[_load(event) for event in data["history"]],
            definition=data["definition"],
            children=children,
            segments=list(data.get("segments", [])),
        )


def _dump(item: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, datetime) else v for k, v in item.items() if k != "ResponseMetadata"
    }


def _load(item: dict[str, Any]) -> dict[str, Any]:
    return {
        k: datetime.fromisoformat(v) if k in _DATES and isinstance(v, str) else v for k, v in item.items()
    }


def fetch(
    sfn: Any,
    execution_arn: str,
    *,
    history: list[dict[str, Any]] | None = None,
    s3: Any = None,
    definition: str | None = None,
    segments: Callable[[str], list[dict[str, Any]]] | None = None,
) -> ExecutionRecord:
    """The execution from Step Functions (local moto or AWS); `history` when the caller already read it;
    `segments` reads a trace's segments (the target's own: local capture or X-Ray)."""
    described = {
        k: v for k, v in sfn.describe_execution(executionArn=execution_arn).items() if k != "ResponseMetadata"
    }
    if history is None:
        history = read_execution(sfn, described).history
    if definition is None:
        definition = str(sfn.describe_state_machine_for_execution(executionArn=execution_arn)["definition"])
    record = ExecutionRecord(described, history, definition)
    record.children = _children(sfn, s3, record)
    if segments is not None and record.trace_id:
        record.segments = segments(record.trace_id)
    return record


def _children(sfn: Any, s3: Any, record: ExecutionRecord) -> list[ChildExecution]:
    """A Distributed Map's child executions: ListExecutions(mapRunArn) where it answers (AWS), else the
    ResultWriter files the map run wrote."""
    map_runs = [
        event["mapRunStartedEventDetails"]["mapRunArn"]
        for event in record.history
        if event.get("type") == "MapRunStarted" and "mapRunStartedEventDetails" in event
    ]
    children: list[ChildExecution] = []
    if not map_runs:
        return children
    # What a child runs: the Map state's ItemProcessor (one Map state per definition in this project).
    processors = list(Machine.from_definition(record.definition).processors.values())
    child_definition = json.dumps(processors[0]) if processors else record.definition
    for map_run_arn in map_runs:
        try:
            pages = sfn.get_paginator("list_executions").paginate(mapRunArn=map_run_arn)
            listed = [execution for page in pages for execution in page["executions"]]
        except Exception:  # moto 5.2.5 keeps no child executions: it wants a stateMachineArn
            listed = []
        for execution in listed:
            if len(children) >= MAX_CHILD_HISTORIES:
                name = str(execution["executionArn"]).rsplit(":", 1)[-1]
                children.append(ChildExecution(name, str(execution["status"])))
                continue
            child = fetch(sfn, execution["executionArn"], definition=child_definition)
            children.append(ChildExecution(child.name, child.status, record=child))
    if not children and s3 is not None:
        children = _written_children(s3, record)
    return children


def _written_children(s3: Any, record: ExecutionRecord) -> list[ChildExecution]:
    output = json.loads(record.described.get("output") or "{}")
    manifest_uri = str(output.get("manifest", "")) if isinstance(output, dict) else ""
    if not manifest_uri.startswith("s3://"):
        return []
    bucket, _, key = manifest_uri.removeprefix("s3://").partition("/")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    children = []
    for status, files in manifest.get("ResultFiles", {}).items():
        for file in files:
            for entry in json.loads(s3.get_object(Bucket=bucket, Key=file["Key"])["Body"].read()):
                children.append(
                    ChildExecution(
                        name=str(entry.get("Name") or entry.get("ExecutionArn", "").rsplit(":", 1)[-1]),
                        status=str(entry.get("Status", status)),
                        input=str(entry.get("Input", "")),
                        output=str(entry.get("Output", "")),
                        error=str(entry.get("Error", "") or ""),
                        cause=str(entry.get("Cause", "") or ""),
                    )
                )
    return sorted(children, key=lambda c: c.input)


def save(record: ExecutionRecord, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{record.name}.json"
    path.write_text(json.dumps(record.to_json(), default=str), encoding="utf-8")
    return path


def load(path: Path) -> ExecutionRecord:
    return ExecutionRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
