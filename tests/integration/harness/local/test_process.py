"""LocalWorkflow leaves the process as it found it: environment, stdout, boto3's default session and
moto's Step Functions engine."""

from __future__ import annotations

import inspect
import logging
import os
import sys
from typing import Any

import boto3
import pytest

from harness.local.workflow import LocalWorkflow

pytestmark = pytest.mark.integration


def process_state() -> dict[str, Any]:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client, json_path

    return {
        "environ": os.environ,
        "environment": dict(os.environ),
        "stdout": sys.stdout,
        "default_session": boto3.DEFAULT_SESSION,
        "json_path.parse": json_path.parse,
        "boto_client_for": boto_client.boto_client_for,
        "result_writer": inspect.getattr_static(resource_eval_s3.ResourceEvalS3, "_handle_put_object"),
        "moto log level": logging.getLogger("moto.stepfunctions.parser").level,
    }


def test_two_workflows_one_after_the_other_restore_everything(stub_model: Any, bicycle_png: bytes) -> None:
    # Given the process as it is
    before = process_state()
    # When two workflows open, run an image and close, one after the other
    for _ in range(2):
        with LocalWorkflow(model=stub_model) as workflow:
            inside = process_state()
            assert workflow.run(workflow.upload(bicycle_png, "test/bicycle.png")).status == "SUCCEEDED"
    # Then inside, the harness had changed them; after, each is what it was, the same object
    assert inside["environ"] is not before["environ"] and inside["stdout"] is not before["stdout"]
    assert inside["json_path.parse"] is not before["json_path.parse"]
    after = process_state()
    for name, value in before.items():
        assert after[name] == value if name == "environment" else after[name] is value, name
