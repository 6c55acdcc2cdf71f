"""Failures carrying the most data the workflow accepts keep every state under 256 KB.

A Catch that kept the state's input beside the error would put the base64 image (up to about 250 KB)
and a long cause in one state, past Step Functions' 262,144 bytes: AWS then fails the execution with
States.DataLimitExceeded, which no Catch can catch, instead of the error's own name.
"""

from __future__ import annotations

import io
import json
import random
import time
from typing import Any

import pytest
from PIL import Image

from harness.local.endpoint import EndpointFault
from harness.local.workflow import LocalWorkflow
from harness.ops.execution import MAX_STATE_PAYLOAD_BYTES, TERMINAL_STATUSES, ExecutionResult, read_execution
from scones_common.settings import SerializeSettings

pytestmark = pytest.mark.integration

# The largest inline image serialize may be configured for, and a cause near Step Functions' own
# 32,768-character limit on one.
LARGEST_INLINE_IMAGE = next(
    int(rule.le)
    for rule in SerializeSettings.model_fields["max_inline_image_bytes"].metadata
    if hasattr(rule, "le")
)
LONG_MESSAGE = "m" * 30_000


def state_payloads(result: ExecutionResult) -> list[tuple[str, int]]:
    """(event type and state, bytes) of every state input and output in the execution's history."""
    sizes = []
    current = "?"
    for event in result.history:
        for key in ("stateEnteredEventDetails", "stateExitedEventDetails"):
            details = event.get(key)
            if details:
                current = details["name"]
                text = details.get("input") if key == "stateEnteredEventDetails" else details.get("output")
                sizes.append((f"{event['type']} {current}", len((text or "").encode())))
    return sizes


def noise_png(target_bytes: int) -> bytes:
    """A PNG of random pixels (it does not compress) just under `target_bytes`."""
    rng = random.Random(12)
    side = int((target_bytes / 3) ** 0.5)
    while True:
        image = Image.frombytes(
            "RGB", (side, side), bytes(rng.getrandbits(8) for _ in range(side * side * 3))
        )
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        if len(buffer.getvalue()) <= target_bytes:
            return buffer.getvalue()
        side -= 2


def assert_every_state_fits(result: ExecutionResult) -> None:
    too_large = [(where, size) for where, size in state_payloads(result) if size > MAX_STATE_PAYLOAD_BYTES]
    assert not too_large, too_large


def test_failed_classification_of_the_largest_image_keeps_states_under_256_kb(
    stub_workflow: LocalWorkflow,
) -> None:
    # Given serialize configured for the largest inline image it accepts, an image that fits it as it
    # is, and an endpoint that rejects it with a message of 30,000 characters
    serialize = stub_workflow.functions["SerializeImageDataFunction"]
    serialize.environment["MAX_INLINE_IMAGE_BYTES"] = str(LARGEST_INLINE_IMAGE)
    image = noise_png(LARGEST_INLINE_IMAGE)
    assert stub_workflow.endpoint is not None
    stub_workflow.endpoint.inject(EndpointFault("ValidationError", 400, LONG_MESSAGE))
    # When it runs through the real definition
    result = stub_workflow.run(stub_workflow.upload(image, "test/largest.png"))
    # Then it fails with its own error and the long cause, and no state ever held more than 256 KB
    assert (result.status, result.error) == ("FAILED", "EndpointError"), result.cause
    assert LONG_MESSAGE in (result.cause or "")
    serialized = result.state_output("SerializeImageData")
    assert serialized is not None and len(serialized["image_data"]) > 250_000  # the image went through
    assert_every_state_fits(result)


def test_failed_serialization_of_the_largest_input_keeps_states_under_256_kb(
    stub_workflow: LocalWorkflow,
) -> None:
    # Given the original course's input shape, its image_data filling the execution input to just under
    # 256 KB, for a key that does not exist
    execution_input: dict[str, Any] = {
        "image_data": "",
        "s3_bucket": stub_workflow.bucket,
        "s3_key": "test/none.png",
    }
    room = MAX_STATE_PAYLOAD_BYTES - len(json.dumps(execution_input).encode()) - 64
    execution_input["image_data"] = "A" * room
    # When it runs (read without the notification rule: its message would carry this whole input, which
    # SNS refuses past 256 KB; see docs/RELIABILITY.md)
    result = ended(stub_workflow, stub_workflow.start(execution_input))
    # Then it fails with serialize's own error, not States.DataLimitExceeded, and every state fits
    assert (result.status, result.error) == ("FAILED", "ImageNotFoundError"), result.cause
    assert_every_state_fits(result)


def ended(workflow: LocalWorkflow, execution_arn: str, timeout_seconds: float = 60.0) -> ExecutionResult:
    deadline = time.monotonic() + timeout_seconds
    while True:
        described = workflow.sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in TERMINAL_STATUSES or time.monotonic() > deadline:
            return read_execution(workflow.sfn, described)
        time.sleep(0.02)
