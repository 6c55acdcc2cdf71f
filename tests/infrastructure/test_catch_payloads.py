"""A Catch keeps the error alone wherever the state's input can carry the base64 image.

Step Functions caps every state's input and output at 262,144 bytes, and a Catch's ResultPath decides
what the next state gets: with "$.error" it is the failed state's input (the image, up to about 250 KB)
plus the error (a cause of up to 32 KB), which can pass the cap; AWS then fails the execution with
States.DataLimitExceeded, which no Catch catches. tests/integration/harness/local/test_state_payloads.py
runs both such failures through the harness.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Tasks whose input may hold image data: classify (serialize's output) and, in the main workflow,
# serialize too (an execution input of the original course's shape has an image_data field; a batch
# child's input is only the bucket and key).
CARRY_THE_IMAGE = {
    "image_classification.asl.json": {"${SerializeImageDataFunctionArn}", "${ClassifyImageFunctionArn}"},
    "batch_classification.asl.json": {"${ClassifyImageFunctionArn}"},
}
# The error in place of the whole input, or in place of the image itself.
WITHOUT_THE_IMAGE = {"$", "$.image_data"}


def tasks(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in machine["States"].items():
        if state["Type"] == "Task":
            yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from tasks(processor)


@pytest.mark.parametrize("file_name", sorted(CARRY_THE_IMAGE))
def test_catches_of_image_carrying_tasks_keep_only_the_error(project_root: Path, file_name: str) -> None:
    # Given every Task whose input may hold the image
    machine = json.loads((project_root / "statemachine" / file_name).read_text())
    functions = CARRY_THE_IMAGE[file_name]
    carrying = [(n, s) for n, s in tasks(machine) if s.get("Parameters", {}).get("FunctionName") in functions]
    assert len(carrying) == len(functions)
    for name, state in carrying:
        # When its Catches are read / Then each puts the error ({Error, Cause}) in place of the image
        for catcher in state["Catch"]:
            assert catcher["ResultPath"] in WITHOUT_THE_IMAGE, (file_name, name, catcher["ErrorEquals"])
