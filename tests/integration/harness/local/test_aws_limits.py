"""The harness enforces the AWS limits moto does not: 256 KB per state, 6 MB per synchronous invoke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.local.workflow import LocalWorkflow
from tests.helpers import StubModel

pytestmark = pytest.mark.integration

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Handler: app.lambda_handler
      Timeout: 1
      Environment:
        Variables:
          REPEAT: "1"
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: machine.asl.json
      DefinitionSubstitutions:
        EchoFunctionArn: !GetAtt EchoFunction.Arn
"""

HANDLER = """
import os
import time

def lambda_handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"data": "x" * int(event["size"]), "repeat": os.environ["REPEAT"]}
"""

ASL = {
    "StartAt": "Echo",
    "States": {
        "Echo": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${EchoFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload.repeat",
            "End": True,
        }
    },
}


@pytest.fixture
def echo_workflow(tmp_path: Path):
    (tmp_path / "echo").mkdir()
    (tmp_path / "echo" / "app.py").write_text(HANDLER)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "machine.asl.json").write_text(json.dumps(ASL))
    with LocalWorkflow(
        template_path=tmp_path / "template.yaml", model=StubModel(), log_dir=tmp_path / "logs"
    ) as wf:
        yield wf


def test_small_result_passes(echo_workflow: LocalWorkflow) -> None:
    result = echo_workflow.wait(echo_workflow.start({"size": 10}))
    assert (result.status, result.output) == ("SUCCEEDED", 1)  # the function's own environment


def test_result_over_256_kb_fails_with_data_limit_exceeded(echo_workflow: LocalWorkflow) -> None:
    result = echo_workflow.wait(echo_workflow.start({"size": 300_000}))
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded"), result.cause


def test_result_over_6_mb_fails_like_lambda(echo_workflow: LocalWorkflow) -> None:
    result = echo_workflow.wait(echo_workflow.start({"size": 7 * 1024 * 1024}))
    assert (result.status, result.error) == ("FAILED", "Function.ResponseSizeTooLarge")


def test_execution_input_over_256_kb_is_refused(echo_workflow: LocalWorkflow) -> None:
    from harness.ops.execution import ExecutionInputTooLargeError

    with pytest.raises(ExecutionInputTooLargeError):
        echo_workflow.start({"size": 1, "padding": "x" * 300_000})


def test_function_past_its_timeout_fails_like_lambda(echo_workflow: LocalWorkflow) -> None:
    # Given a function with Timeout: 1 that takes 1.3 s
    result = echo_workflow.wait(echo_workflow.start({"size": 1, "sleep": 1.3}))
    # Then the state fails with the error Lambda reports, and its late result is discarded
    assert (result.status, result.error) == ("FAILED", "Sandbox.Timedout")
    assert "Task timed out after 1.00 seconds" in (result.cause or "")
