"""Every catalogued input ends in a named error or a classification, through the real workflow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.local.workflow import LocalWorkflow
from harness.reliability.cases import EVENT_CASES, INPUT_CASES, InputCase, InputEventCase

pytestmark = pytest.mark.integration
CLASSIFIED = {("SUCCEEDED", None), ("FAILED", "THRESHOLD_CONFIDENCE_NOT_MET")}


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorkflow]:
    # The committed default model answers: these are the images a user would really send.
    with LocalWorkflow(log_dir=tmp_path_factory.mktemp("logs")) as local:
        yield local


@pytest.mark.parametrize("case", INPUT_CASES, ids=[c.name for c in INPUT_CASES])
def test_input_ends_as_catalogued(workflow: LocalWorkflow, case: InputCase) -> None:
    # Given the object in the bucket (or not, for a missing key)
    if case.make is not None:
        workflow.upload(case.make(), case.key)
    # When the state machine runs on it
    result = workflow.run(case.key)
    # Then it ends in a terminal state with the catalogued outcome and a reason
    if case.expects_classification:
        assert (result.status, result.error) in CLASSIFIED, result.message
        classification = result.output or result.state_output("ClassifyImage") or {}
        assert classification.get("label") in ("bicycle", "motorcycle")
    else:
        assert (result.status, result.error) == ("FAILED", case.outcome), result.message
        assert result.message, "a failure must say why"


@pytest.mark.parametrize("case", EVENT_CASES, ids=[c.name for c in EVENT_CASES])
def test_malformed_execution_input_is_named(workflow: LocalWorkflow, case: InputEventCase) -> None:
    result = workflow.wait(workflow.start(case.execution_input))
    assert (result.status, result.error) == ("FAILED", case.outcome), result.message
    assert result.message


def test_extra_fields_in_the_input_are_ignored(workflow: LocalWorkflow) -> None:
    key = "ok/extra-fields.png"
    workflow.upload(INPUT_CASES[-1].make(), key)  # type: ignore[misc]
    extra = {"s3_bucket": workflow.bucket, "s3_key": key, "image_data": "", "priority": "high", "n": 3}
    result = workflow.wait(workflow.start(extra))
    assert (result.status, result.error) in CLASSIFIED
