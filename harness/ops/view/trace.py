"""An execution's X-Ray trace as the view draws it: its segment documents (as BatchGetTraces returns them,
or as the local harness caught them) put together, and flattened into the rows of a waterfall."""

from __future__ import annotations

import copy
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

FUNCTION_ORIGIN = "AWS::Lambda::Function"


def trace_header_fields(header: str | None) -> dict[str, str]:
    """The fields of an X-Ray trace header (`Root=1-...;Parent=...;Sampled=1`); {} without one."""
    fields = {}
    for part in (header or "").split(";"):
        key, found, value = part.strip().partition("=")
        if found:
            fields[key] = value
    return fields


def trace_root(header: str | None) -> str:
    """`1-5f...-...` from an X-Ray trace header; "" without one."""
    return trace_header_fields(header).get("Root", "")


def new_trace_root() -> str:
    """A new X-Ray trace id: `1-<epoch seconds, hex>-<96 random bits, hex>`."""
    return f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"


def assemble(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whole segments from documents sent one by one: each streamed subsegment (`type: subsegment`,
    `parent_id`) goes back into its parent, as X-Ray puts a trace together. A document whose parent is
    not among them stays at the top level."""
    by_id: dict[str, dict[str, Any]] = {}
    for document in documents:
        if document.get("id") and document["id"] not in by_id:
            by_id[str(document["id"])] = copy.deepcopy(document)
    top: list[dict[str, Any]] = []
    for entity in by_id.values():
        parent = by_id.get(str(entity.get("parent_id", ""))) if entity.get("type") == "subsegment" else None
        if parent is None:
            top.append(entity)
        else:
            known = {str(s.get("id")) for s in parent.get("subsegments", [])}
            if str(entity["id"]) not in known:
                parent.setdefault("subsegments", []).append(entity)
    return sorted(top, key=lambda s: float(s.get("start_time") or 0))


def from_batch_get_traces(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """BatchGetTraces' answer: every segment's Document (a JSON string), put together."""
    documents = [
        json.loads(segment["Document"])
        for trace in answer.get("Traces", [])
        for segment in trace.get("Segments", [])
        if segment.get("Document")
    ]
    return assemble(documents)


@dataclass
class Span:
    """One row of the waterfall: a segment or subsegment."""

    name: str
    depth: int
    start: float  # epoch seconds
    end: float | None
    kind: str  # "segment" or "subsegment"
    origin: str = ""  # e.g. AWS::Lambda::Function, AWS::StepFunctions::StateMachine
    operation: str = ""  # an AWS call's operation: GetObject, InvokeEndpoint, ...
    annotations: dict[str, Any] = field(default_factory=dict)
    outcome: str = "ok"  # ok, error (4xx), throttle, fault (5xx, unhandled exception)
    exceptions: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name} {self.operation}".strip()

    @property
    def is_function(self) -> bool:
        return self.kind == "segment" and self.origin == FUNCTION_ORIGIN


def _outcome(entity: dict[str, Any]) -> str:
    for flag in ("fault", "throttle", "error"):
        if entity.get(flag):
            return flag
    return "ok"


def _exceptions(entity: dict[str, Any]) -> list[str]:
    cause = entity.get("cause")
    if not isinstance(cause, dict):
        return [str(cause)] if cause else []
    return [
        f"{e.get('type') or 'Exception'}: {e.get('message', '')}".strip(": ")
        for e in cause.get("exceptions", [])
        if isinstance(e, dict)
    ]


def spans(segments: list[dict[str, Any]]) -> list[Span]:
    """Every segment and its subsegments in time order, each subsegment under its parent."""
    rows: list[Span] = []

    def walk(entity: dict[str, Any], depth: int, kind: str) -> None:
        aws = entity.get("aws")
        aws = aws if isinstance(aws, dict) else {}
        rows.append(
            Span(
                name=str(entity.get("name", "")),
                depth=depth,
                start=float(entity.get("start_time") or 0),
                end=float(entity["end_time"]) if entity.get("end_time") is not None else None,
                kind=kind,
                origin=str(entity.get("origin", "")),
                operation=str(aws.get("operation", "")),
                annotations=dict(entity.get("annotations") or {}),
                outcome=_outcome(entity),
                exceptions=_exceptions(entity),
            )
        )
        for child in sorted(entity.get("subsegments", []), key=lambda s: float(s.get("start_time") or 0)):
            walk(child, depth + 1, "subsegment")

    for segment in sorted(segments, key=lambda s: float(s.get("start_time") or 0)):
        walk(segment, 0, "segment" if segment.get("type") != "subsegment" else "subsegment")
    return rows
