"""X-Ray for the local functions: the trace documents their Tracer emits, caught as the daemon receives them.

On Lambda, with active tracing, Powertools' Tracer records each handler in a subsegment that the X-Ray SDK
streams over UDP to the daemon; the SDK sends every document in one datagram, so a document over 64 KiB
(Powertools documents `capture_response=False` for responses over 64 KB) is lost, and its size is paid
in every invocation. Here nothing listens on UDP: `local_xray` points the SDK's recorder at an emitter
that keeps each document, in the Lambda context the SDK would use there (a facade segment from the
invocation's `_X_AMZN_TRACE_ID`), so a test can read what would have been sent and how big it was.

In-process rather than a UDP listener on 127.0.0.1:2000: the SDK's own emitter interface is the one
point where every document passes, whole and in order, with no port to claim (two workflows, or a
test run beside a real daemon, would collide on it), no datagram to lose and no thread to stop; the
size of each document is still measured as the daemon would receive it.

Lambda itself records each invocation as a segment (origin AWS::Lambda::Function) that the SDK's
subsegments name as their parent; the harness plays Lambda here and adds that segment
(`function_segment`), with the trace root Step Functions passed (one trace per execution).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.ops.view.trace import trace_header_fields

# One UDP datagram to the X-Ray daemon carries one document; 64 KiB bounds it.
MAX_DOCUMENT_BYTES = 64 * 1024


def tracing_environment(code_dir: Path) -> dict[str, str]:
    """What Lambda sets for a function with active tracing: Powertools' Tracer turns itself on there."""
    return {"POWERTOOLS_TRACE_DISABLED": "false", "LAMBDA_TASK_ROOT": str(code_dir)}


@dataclass(frozen=True)
class TraceDocument:
    function_name: str  # the function whose invocation emitted it
    size: int  # bytes of the serialized document, as sent to the daemon
    document: dict[str, Any]

    def named(self, name: str) -> list[dict[str, Any]]:
        """This document's (sub)segments called `name`, nested ones included."""
        found: list[dict[str, Any]] = []
        stack = [self.document]
        while stack:
            entity = stack.pop()
            if entity.get("name") == name:
                found.append(entity)
            stack.extend(entity.get("subsegments", []))
        return found


class CapturingEmitter:
    """Stands in for aws_xray_sdk's UDPEmitter: keeps each document instead of sending it."""

    def __init__(self) -> None:
        self.documents: list[TraceDocument] = []  # what the functions' X-Ray SDK sent
        self.function_segments: list[TraceDocument] = []  # what Lambda (the harness) records
        self._lock = threading.Lock()

    def function_segment(
        self,
        function_name: str,
        function_arn: str,
        trace_header: str,
        started_at: float,
        ended_at: float,
        error_payload: dict[str, Any] | None = None,
    ) -> None:
        """The invocation's segment as Lambda records it: the trace root and segment id from the header
        the function ran with; an unhandled error marks it as a fault with the error's type and message."""
        fields = trace_header_fields(trace_header)
        document: dict[str, Any] = {
            "id": fields.get("Parent", ""),
            "trace_id": fields.get("Root", ""),
            "name": function_name,
            "origin": "AWS::Lambda::Function",
            "start_time": started_at,
            "end_time": ended_at,
            "aws": {"function_arn": function_arn},
        }
        if error_payload is not None:
            document["fault"] = True
            document["cause"] = {
                "exceptions": [
                    {
                        "type": str(error_payload.get("errorType", "")),
                        "message": str(error_payload.get("errorMessage", "")),
                    }
                ]
            }
        text = json.dumps(document)
        with self._lock:
            self.function_segments.append(TraceDocument(function_name, len(text.encode()), document))

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """Every document of one trace (the functions' segments and what their SDK sent), as sent."""
        with self._lock:
            kept = [*self.function_segments, *self.documents]
        return [d.document for d in kept if d.document.get("trace_id") == trace_id]

    def send_entity(self, entity: Any) -> None:
        text = entity.serialize()
        document = TraceDocument(
            os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""), len(text.encode()), json.loads(text)
        )
        with self._lock:
            self.documents.append(document)

    def set_daemon_address(self, address: str | None) -> None:
        """Nothing to address: no daemon."""

    @property
    def oversized(self) -> list[TraceDocument]:
        """The documents the daemon could not have received (over MAX_DOCUMENT_BYTES)."""
        return [d for d in self.documents if d.size > MAX_DOCUMENT_BYTES]

    def of(self, function_name: str) -> list[TraceDocument]:
        return [d for d in self.documents if d.function_name == function_name]


@contextmanager
def local_xray() -> Iterator[CapturingEmitter]:
    """Inside: the X-Ray SDK records as in a Lambda function and emits into the returned emitter.

    The SDK's recorder and its on/off switch are process-wide, and Powertools' Tracer keeps its
    configuration on the class (a Tracer once disabled in this process stays disabled): both are set
    for the block and put back after it.
    """
    from aws_lambda_powertools import Tracer
    from aws_xray_sdk import global_sdk_config
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.lambda_launcher import LambdaContext

    saved = {
        "context": xray_recorder.context,
        "emitter": xray_recorder.emitter,
        "sampling": xray_recorder.sampling,
        "streaming_threshold": xray_recorder.streaming_threshold,
    }
    was_enabled = global_sdk_config.sdk_enabled()
    # botocore is patched process-wide, so moto's own threads' calls reach the SDK too, without a trace
    # header (none would exist on Lambda): it logs a warning for each one, which says nothing here.
    quiet = [logging.getLogger(f"aws_xray_sdk.core.{name}") for name in ("lambda_launcher", "context")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    emitter = CapturingEmitter()
    # Subsegments stream as they close, as Powertools configures the SDK on Lambda; threads that are not
    # a function's invocation (moto's) have no trace header: their calls are not traced.
    xray_recorder.configure(
        context=LambdaContext(),
        emitter=emitter,
        sampling=False,
        streaming_threshold=0,
        context_missing="IGNORE_ERROR",
    )
    Tracer._reset_config()  # a private reset: see the docstring
    global_sdk_config.set_sdk_enabled(True)
    try:
        yield emitter
    finally:
        xray_recorder.context = saved["context"]
        xray_recorder.emitter = saved["emitter"]
        xray_recorder.sampling = saved["sampling"]
        xray_recorder.streaming_threshold = saved["streaming_threshold"]
        global_sdk_config.set_sdk_enabled(was_enabled)
        Tracer._reset_config()
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
