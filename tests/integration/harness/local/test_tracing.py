"""X-Ray as deployed (Tracing: Active): what each function's Tracer would send to the daemon, and one
trace per execution with each function's segment, its annotations and its errors."""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from harness.local.tracing import MAX_DOCUMENT_BYTES
from harness.local.workflow import LocalWorkflow
from harness.ops.view.trace import FUNCTION_ORIGIN, trace_root
from tests.helpers import StubModel, png_bytes

pytestmark = pytest.mark.integration


def noisy_png(side: int = 224) -> bytes:
    """A PNG that barely compresses: its base64 is about 200 KB, as a large upload's would be."""
    rng = random.Random(12)
    image = Image.frombytes("RGB", (side, side), bytes(rng.getrandbits(8) for _ in range(side * side * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_no_function_sends_a_trace_document_the_daemon_cannot_take(tmp_path: Path) -> None:
    # Given the workflow with X-Ray active, and an image whose serialized state is about 200 KB
    image = noisy_png()
    with LocalWorkflow(model=StubModel(), log_dir=tmp_path, tracing=True) as workflow:
        assert workflow.traces is not None
        # When it is classified
        result = workflow.run(workflow.upload(image, "test/noisy.png"))
        traces = workflow.traces
        serialize = workflow.stack.function_by_name("SerializeImageDataFunction").function_name
        classify = workflow.stack.function_by_name("ClassifyImageFunction").function_name
    assert result.status == "SUCCEEDED", (result.error, result.message)
    assert len(json.dumps(result.output)) < 10_000  # the image is not in the output: it was in the state
    # Then each function's handler was traced (its subsegment with its annotations reached the emitter)
    serialize_handler = [s for d in traces.of(serialize) for s in d.named("## lambda_handler")]
    classify_handler = [s for d in traces.of(classify) for s in d.named("## lambda_handler")]
    assert len(serialize_handler) == 1 and len(classify_handler) == 1
    assert serialize_handler[0]["annotations"]["s3_key"] == "test/noisy.png"
    assert classify_handler[0]["annotations"]["label"] == "bicycle"
    # and serialize's response (the base64 image) is not in its metadata, while classify's small one is
    assert "lambda_handler response" not in json.dumps(serialize_handler[0].get("metadata", {}))
    assert "lambda_handler response" in json.dumps(classify_handler[0].get("metadata", {}))
    # and no document is over what one datagram to the daemon carries
    assert traces.oversized == [], [(d.function_name, d.size) for d in traces.oversized]
    assert max(d.size for d in traces.documents) < MAX_DOCUMENT_BYTES


def test_tracing_is_put_back_for_the_next_workflow(tmp_path: Path, bicycle_png: bytes) -> None:
    # Given a traced workflow that has run and closed
    with LocalWorkflow(model=StubModel(), log_dir=tmp_path, tracing=True) as traced:
        traced.run(traced.upload(bicycle_png, "test/a.png"))
        assert traced.traces is not None and traced.traces.documents
        emitted = len(traced.traces.documents)
    # When a workflow without tracing runs
    with LocalWorkflow(model=StubModel(), log_dir=tmp_path) as plain:
        result = plain.run(plain.upload(bicycle_png, "test/b.png"))
    # Then it succeeds and nothing more reached the traced workflow's emitter
    assert result.status == "SUCCEEDED"
    assert len(traced.traces.documents) == emitted


README = Path(__file__).resolve().parents[4] / "README.md"
# Which function records which of the annotations the README promises (on its handler's subsegment).
ANNOTATIONS = {
    "SerializeImageDataFunction": {"s3_key"},
    "ClassifyImageFunction": {"s3_key", "label", "confidence"},
    "FilterInferencesFunction": {"label", "confidence"},
}


def promised_annotations() -> set[str]:
    """The annotations README.md's "Logs, metrics and traces" names, read now."""
    bullet = README.read_text().split("\n- Traces:", 1)[1].split("\n- ", 1)[0].split("\n\n", 1)[0]
    # "... annotations `s3_key`, `label`, `confidence` (e.g. ...": the names before the parenthesis
    return set(re.findall(r"`(\w+)`", bullet.split("annotations", 1)[1].split("(", 1)[0]))


def invoked_functions(history: list[dict[str, Any]]) -> list[str]:
    return [
        json.loads(event["taskScheduledEventDetails"]["parameters"])["FunctionName"].rsplit(":", 1)[-1]
        for event in history
        if event["type"] == "TaskScheduled"
        and event["taskScheduledEventDetails"].get("resourceType") == "lambda"
    ]


def handler_of(segment: dict[str, Any]) -> dict[str, Any]:
    [handler] = [s for s in segment.get("subsegments", []) if s["name"] == "## lambda_handler"]
    return handler


def test_each_execution_is_one_trace_with_a_segment_per_function_invoked(tmp_path: Path) -> None:
    # Given the workflow with X-Ray active, threshold 0.99, and three images: one the model is sure of
    # (0.997), one it is not (0.97: ThresholdConfidenceNotMet), and bytes that are no image
    model = StubModel([0.997, 0.003])
    with LocalWorkflow(model=model, log_dir=tmp_path, tracing=True, threshold=0.99) as workflow:
        # When each is classified
        sure = workflow.run(workflow.upload(png_bytes(), "test/sure.png"))
        model.probabilities = [0.97, 0.03]
        unsure = workflow.run(workflow.upload(png_bytes(), "test/unsure.png"))
        broken = workflow.run(workflow.upload(b"<html>not an image</html>", "test/broken.png"))
        runs = {"sure": sure, "unsure": unsure, "broken": broken}
        headers = {
            name: workflow.sfn.describe_execution(executionArn=r.execution_arn).get("traceHeader", "")
            for name, r in runs.items()
        }
        traces = {name: workflow.segments(trace_root(header)) for name, header in headers.items()}
    assert [r.status for r in runs.values()] == ["SUCCEEDED", "FAILED", "FAILED"]
    # Then each execution has a trace of its own (DescribeExecution's traceHeader, as with tracing on AWS)
    roots = {trace_root(header) for header in headers.values()}
    assert len(roots) == 3 and "" not in roots
    for name, result in runs.items():
        segments = traces[name]
        # with one function segment per Lambda Task attempt of its history, in order, and nothing else
        assert [s["name"] for s in segments] == invoked_functions(result.history), name
        assert {s["origin"] for s in segments} == {FUNCTION_ORIGIN}
        assert {s["trace_id"] for s in segments} == {trace_root(headers[name])}
        for segment in segments:
            # each with its handler's subsegment carrying the annotations its function promises
            handler = handler_of(segment)
            expected = ANNOTATIONS.get(segment["name"], set())
            if segment.get("fault") and segment["name"] == "SerializeImageDataFunction":
                expected = {"s3_key"}  # set before the image is read
            assert expected <= set(handler.get("annotations", {})), (name, segment["name"], handler)
    # and together they are every annotation the README promises
    assert set().union(*ANNOTATIONS.values()) == promised_annotations()
    # and the S3 read and the endpoint call are subsegments of the handler that made them
    sure_calls = {
        (s["name"], sub["name"], sub.get("aws", {}).get("operation"))
        for s in traces["sure"]
        for sub in handler_of(s).get("subsegments", [])
    }
    assert ("SerializeImageDataFunction", "s3", "GetObject") in sure_calls
    assert ("ClassifyImageFunction", "runtime.sagemaker", "InvokeEndpoint") in sure_calls
    # and an error is recorded on the failing function's segment and its handler, named as the ASL names it
    for name, function, error in (
        ("unsure", "FilterInferencesFunction", "ThresholdConfidenceNotMetError"),
        ("broken", "SerializeImageDataFunction", "InvalidImageError"),
    ):
        failed = [s for s in traces[name] if s.get("fault")]
        assert [s["name"] for s in failed] == [function], name
        for entity in (failed[0], handler_of(failed[0])):
            assert entity["fault"] is True
            assert [e["type"] for e in entity["cause"]["exceptions"]][:1] == [error], entity
    assert not [s for s in traces["sure"] if s.get("fault") or handler_of(s).get("fault")]
