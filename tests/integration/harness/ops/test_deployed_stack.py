"""`--stack NAME`: run, batch, monitor and load against a deployed stack, here a CloudFormation stack in moto.

The stack's outputs name the local workflow's bucket and state machines, so the executions these
commands start are real executions of the real ASL with the real handlers; only the stack lookup,
the upload and the polling go through the deployed-stack code path (harness/ops/deployed.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from harness.cli import scones
from harness.cli.batch import batch_command
from harness.cli.load import load_command
from harness.cli.monitor import monitor_command
from harness.local.template import REGION
from harness.local.workflow import LocalWorkflow
from harness.ops.deployed import DeployedStack, DeployedStackError
from harness.ops.execution import BATCH_STATE_MACHINE_NAME
from harness.samples import SAMPLES_DIR
from tests.helpers import StubModel, png_bytes

pytestmark = pytest.mark.integration
STACK = "scones-prod"


def create_stack(workflow: LocalWorkflow, name: str = STACK, outputs: dict[str, str] | None = None) -> None:
    assert workflow.endpoint is not None
    if outputs is None:
        outputs = {
            "ImageBucketName": workflow.bucket,
            "StateMachineArn": workflow.state_machine_arn,
            "BatchStateMachineArn": workflow.state_machine_arns[BATCH_STATE_MACHINE_NAME],
            "ClassifierEndpointName": workflow.endpoint.name,
            "ClassifierConfidenceThreshold": workflow.stack.parameters["ConfidenceThreshold"],
            "ImageUploadPrefix": workflow.stack.parameters["UploadPrefix"],
        }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[LocalWorkflow]:
    with LocalWorkflow(model=StubModel([0.97, 0.03]), log_dir=tmp_path / "logs") as workflow:
        create_stack(workflow)
        yield workflow


def invoke(command: Any, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(command, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_the_stack_outputs_name_the_resources(deployed: LocalWorkflow) -> None:
    stack = DeployedStack(STACK)
    assert stack.bucket == deployed.bucket
    assert stack.state_machine_arn == deployed.state_machine_arn
    assert (
        stack.state_machine_arns[BATCH_STATE_MACHINE_NAME]
        == deployed.state_machine_arns[BATCH_STATE_MACHINE_NAME]
    )
    assert stack.outputs.upload_prefix == deployed.stack.parameters["UploadPrefix"]
    assert stack.threshold == deployed.stack.parameters["ConfidenceThreshold"]


def test_run_with_stack_uploads_outside_the_upload_prefix_and_waits_for_real_executions(
    deployed: LocalWorkflow, tmp_path: Path
) -> None:
    bicycle = SAMPLES_DIR / "bicycle" / "bicycle_s_000051.png"
    impostor = tmp_path / "impostor.png"
    impostor.write_text("not an image")
    code, out = invoke(scones, "run", str(bicycle), str(impostor), "--stack", STACK, "--json")
    assert code == 0, out
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["status"], r["error"]) for r in records] == [
        ("SUCCEEDED", None),
        ("FAILED", "InvalidImageError"),
    ]
    assert records[0]["label"] == "bicycle" and records[0]["states"]["ClassifyImage"] >= 0
    keys = [o["Key"] for o in deployed.s3.list_objects_v2(Bucket=deployed.bucket)["Contents"]]
    uploaded = [key for key in keys if key.startswith("scones-run/")]
    assert len(uploaded) == 2
    executions = deployed.sfn.list_executions(stateMachineArn=deployed.state_machine_arn)["executions"]
    assert {e["executionArn"] for e in executions} == {r["execution_arn"] for r in records}


def test_run_with_stack_prints_the_same_table(deployed: LocalWorkflow) -> None:
    code, out = invoke(scones, "run", str(SAMPLES_DIR / "bicycle"), "--stack", STACK)
    assert code == 0, out
    assert f"on stack {STACK}" in out and "SUCCEEDED" in out
    assert f"sam logs --stack-name {STACK}" in out


def test_batch_with_stack_runs_the_stacks_batch_state_machine(
    deployed: LocalWorkflow, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        (folder / f"{index}.png").write_bytes(png_bytes(color=(index * 60, 10, 10)))
    (folder / "notes.txt").write_text("not an image")
    code, out = invoke(batch_command, str(folder), "--stack", STACK, "--json")
    assert code == 0, out
    record = json.loads(out)
    assert record["status"] == "SUCCEEDED" and record["objects"] == 4
    assert record["summary"]["labels"] == {"bicycle": 3} and record["summary"]["skipped"] == 1
    batches = deployed.sfn.list_executions(
        stateMachineArn=deployed.state_machine_arns[BATCH_STATE_MACHINE_NAME]
    )["executions"]
    assert len(batches) == 1


def test_monitor_with_stack_reads_the_capture_from_the_stacks_bucket(
    deployed: LocalWorkflow, tmp_path: Path
) -> None:
    for index in range(3):
        deployed.run(deployed.upload(png_bytes(color=(index * 50, 0, 0)), f"m/{index}.png"))
    assert deployed.capture is not None
    deployed.capture.flush()
    code, out = invoke(monitor_command, "--stack", STACK, "--json", "--out", str(tmp_path / "report"))
    assert code == 0, out
    summary = json.loads(out)
    assert summary["records"] == 3
    assert summary["threshold"] == float(deployed.stack.parameters["ConfidenceThreshold"])
    assert Path(summary["report"]).is_file()


def test_load_with_stack_reports_percentiles_and_outcomes(deployed: LocalWorkflow) -> None:
    code, out = invoke(load_command, "--stack", STACK, "--rate", "4", "--duration", "1", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["planned"] == report["started"] == 4
    assert sum(report["outcomes"].values()) == 4 == report["finished"]
    latency = report["latency_seconds"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    started = deployed.sfn.list_executions(stateMachineArn=deployed.state_machine_arn)["executions"]
    assert len(started) == 4


def test_a_missing_stack_is_one_clear_error(deployed: LocalWorkflow) -> None:
    code, out = invoke(scones, "run", str(SAMPLES_DIR / "bicycle"), "--stack", "no-such-stack")
    assert code == 1
    assert "no-such-stack" in out and "does not exist" in out and "Traceback" not in out


def test_a_stack_of_another_template_names_the_missing_output(deployed: LocalWorkflow) -> None:
    create_stack(deployed, "someone-elses", {"Something": "else"})
    code, out = invoke(batch_command, str(SAMPLES_DIR), "--stack", "someone-elses")
    assert code == 1
    assert "ImageBucketName" in out and "StateMachineArn" in out


@pytest.mark.parametrize("option", [["--threshold", "0.5"], ["--max-concurrency", "3"]])
def test_local_only_options_are_refused_with_stack(deployed: LocalWorkflow, option: list[str]) -> None:
    code, out = invoke(batch_command, str(SAMPLES_DIR), "--stack", STACK, *option)
    assert code == 2 and option[0] in out and "not with --stack" in out


def test_uploads_under_the_upload_prefix_are_refused(deployed: LocalWorkflow) -> None:
    stack = DeployedStack(STACK)
    with pytest.raises(DeployedStackError, match="upload prefix"):
        stack.upload(b"x", f"{stack.outputs.upload_prefix}a.png")


# --- a stack whose UploadPrefix is empty: every image uploaded to its bucket starts an execution ----


@pytest.fixture
def every_upload_classified(tmp_path: Path) -> Iterator[LocalWorkflow]:
    """A stack deployed with UploadPrefix "" whose bucket, like the deployed one, sends every upload
    through the upload rule (LocalWorkflow.bucket_sends_events)."""
    with LocalWorkflow(
        model=StubModel([0.97, 0.03]), log_dir=tmp_path / "logs", parameter_overrides={"UploadPrefix": ""}
    ) as workflow:
        assert workflow.endpoint is not None
        create_stack(
            workflow,
            outputs={
                "ImageBucketName": workflow.bucket,
                "StateMachineArn": workflow.state_machine_arn,
                "ImageUploadPrefix": "",
                "ImageUploadedRuleArn": "arn:aws:events:us-east-1:123456789012:rule/scones-prod-upload",
            },
        )
        with workflow.bucket_sends_events():
            yield workflow


def test_run_with_stack_runs_each_image_once_when_every_upload_is_classified(
    every_upload_classified: LocalWorkflow, tmp_path: Path
) -> None:
    # Given two images, one with a space in its name
    bicycle = tmp_path / "my bike.png"
    bicycle.write_bytes((SAMPLES_DIR / "bicycle" / "bicycle_s_000051.png").read_bytes())
    other = tmp_path / "other.png"
    other.write_bytes(png_bytes(color=(10, 200, 10)))
    # When scones run --stack uploads them to a bucket whose rule classifies every upload
    code, out = invoke(scones, "run", str(bicycle), str(other), "--stack", STACK, "--json")
    # Then each image ran exactly once: the rule's execution, which run waited for and reported
    assert code == 0, out
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] for r in records] == ["SUCCEEDED", "SUCCEEDED"]
    workflow = every_upload_classified
    executions = workflow.sfn.list_executions(stateMachineArn=workflow.state_machine_arn)["executions"]
    assert len(executions) == 2
    assert {e["executionArn"] for e in executions} == {r["execution_arn"] for r in records}
    assert all(e["name"].startswith("event-") for e in executions)  # started by the rule


def test_the_rule_starts_nothing_for_keys_it_does_not_match(every_upload_classified: LocalWorkflow) -> None:
    # Given the same stack / When a non-image key is uploaded and run / Then run starts it itself, once
    stack = DeployedStack(STACK)
    assert not stack.outputs.upload_rule_matches("notes/a.gif")
    assert stack.outputs.upload_rule_matches("any/where/a.JPEG")
    result = stack.run(stack.upload(png_bytes(), "scones-run/a.gif"))
    assert result.status == "SUCCEEDED"
    workflow = every_upload_classified
    executions = workflow.sfn.list_executions(stateMachineArn=workflow.state_machine_arn)["executions"]
    assert [e["executionArn"] for e in executions] == [result.execution_arn]


def test_a_rule_that_starts_nothing_is_one_clear_error(deployed: LocalWorkflow) -> None:
    # Given a stack that says it has an upload rule for every key, whose bucket sends no events
    create_stack(
        deployed,
        "silent-rule",
        {
            "ImageBucketName": deployed.bucket,
            "StateMachineArn": deployed.state_machine_arn,
            "ImageUploadPrefix": "",
            "ImageUploadedRuleArn": "arn:aws:events:us-east-1:123456789012:rule/silent",
        },
    )
    stack = DeployedStack("silent-rule", poll_seconds=0.05, rule_start_timeout=0.2)
    # When an image is run / Then the error names the key and where its event went
    with pytest.raises(DeployedStackError, match="UploadEventsDeadLetterQueue"):
        stack.run(stack.upload(png_bytes(), "scones-run/a.png"))


def test_monitor_with_stack_links_each_image_to_its_execution_in_the_console(
    deployed: LocalWorkflow, tmp_path: Path
) -> None:
    # Given two executions in the deployed stack, of two different images, whose inferences were captured
    stack = DeployedStack(STACK)
    images = {name: png_bytes(color=colour) for name, colour in (("red", (200, 0, 0)), ("blue", (0, 0, 200)))}
    executions = {
        name: stack.run(stack.upload(data, f"scones-run/m/{name}.png")) for name, data in images.items()
    }
    assert deployed.capture is not None
    deployed.capture.flush()
    # When `scones monitor --stack` writes its report
    code, _ = invoke(monitor_command, "--stack", STACK, "--json", "--out", str(tmp_path / "report"))
    # Then each image links to the Step Functions console page of its own execution
    assert code == 0
    report = (tmp_path / "report" / "report.html").read_text()
    links = re.findall(r'class="execution"><a href="([^"]+)"', report)
    assert sorted(links) == sorted(
        f"https://{REGION}.console.aws.amazon.com/states/home?region={REGION}"
        f"#/v2/executions/details/{result.execution_arn}"
        for result in executions.values()
    )
