"""X-Ray as deployed (Tracing: Active): what each function's Tracer would send to the daemon."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from PIL import Image

from harness.local.tracing import MAX_DOCUMENT_BYTES
from harness.local.workflow import LocalWorkflow
from tests.helpers import StubModel

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
