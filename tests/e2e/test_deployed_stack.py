"""End to end against a real deployed stack. Skipped unless SCONES_STACK names one.

    SCONES_STACK=scones-image-classification SCONES_REGION=us-east-1 make e2e

Uses the default AWS credentials; starts real executions (a few cents, see docs/COST.md) and leaves
their images under scones-run/, batch/ and load/ of the stack's bucket. The endpoint must be
InService; the monitor test needs data capture (a real-time endpoint, not serverless).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import scones
from harness.cli.batch import batch_command
from harness.cli.load import load_command
from harness.cli.monitor import monitor_command
from harness.ops.deployed import DeployedStack
from harness.samples import SAMPLES_DIR

STACK = os.environ.get("SCONES_STACK", "")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.enable_socket,  # real AWS endpoints: the other tiers may only reach localhost
    pytest.mark.skipif(not STACK, reason="no deployed stack: set SCONES_STACK=<stack name>"),
]


def invoke(command: Any, *args: str) -> tuple[int, str]:
    region = os.environ.get("SCONES_REGION")
    extra = ["--region", region] if region else []
    result = CliRunner().invoke(command, [*args, "--stack", STACK, *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_run_classifies_the_samples() -> None:
    code, out = invoke(scones, "run", str(SAMPLES_DIR / "bicycle"), str(SAMPLES_DIR / "motorcycle"), "--json")
    assert code == 0, out
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 8
    assert {r["status"] for r in records} <= {"SUCCEEDED", "FAILED"}
    assert all(r["label"] in ("bicycle", "motorcycle") for r in records), records


def test_batch_classifies_a_directory() -> None:
    code, out = invoke(batch_command, str(SAMPLES_DIR), "--json")
    assert code == 0, out
    record = json.loads(out)
    assert record["status"] == "SUCCEEDED" and record["summary"]["total"] == 8


def test_load_finishes_every_execution() -> None:
    code, out = invoke(load_command, "--rate", "1", "--duration", "5", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["started"] == 5 == report["finished"]


def test_an_upload_under_the_prefix_starts_an_execution() -> None:
    stack = DeployedStack(STACK, region=os.environ.get("SCONES_REGION"))
    key = f"{stack.outputs.upload_prefix}e2e-{uuid.uuid4().hex[:8]}.png"
    stack.s3.put_object(
        Bucket=stack.bucket, Key=key, Body=(SAMPLES_DIR / "bicycle" / "bike_s_001113.png").read_bytes()
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for execution in stack.sfn.list_executions(stateMachineArn=stack.state_machine_arn, maxResults=50)[
            "executions"
        ]:
            described = stack.sfn.describe_execution(executionArn=execution["executionArn"])
            if json.loads(described.get("input") or "{}").get("s3_key") == key:
                result = stack.wait(execution["executionArn"], timeout_seconds=120)
                assert result.status in ("SUCCEEDED", "FAILED"), result
                return
        time.sleep(5)
    pytest.fail(f"no execution started for s3://{stack.bucket}/{key} within 180 s")


def test_monitor_reports_the_captured_traffic(tmp_path: Any) -> None:
    code, out = invoke(monitor_command, "--json", "--out", str(tmp_path))
    assert code == 0, out
    assert json.loads(out)["records"] > 0
