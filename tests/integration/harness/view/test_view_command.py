"""`scones view`: a local execution that `scones run` recorded, a real one with --stack (here a stack in
moto, as the other --stack tests do), and a clear message when Graphviz is missing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from harness.cli.run import run
from harness.cli.view import view_command
from harness.local.workflow import LocalWorkflow
from harness.ops.deployed import DeployedStack
from harness.ops.view.trace import trace_root
from harness.samples import SAMPLES_DIR
from tests.helpers import StubModel
from tests.integration.harness.ops.test_deployed_stack import STACK, create_stack

pytestmark = pytest.mark.integration
BICYCLE = SAMPLES_DIR / "bicycle" / "bicycle_s_000051.png"


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[LocalWorkflow]:
    with LocalWorkflow(model=StubModel([0.97, 0.03]), log_dir=tmp_path / "logs") as workflow:
        create_stack(workflow)
        yield workflow


def history_ids(page: Path) -> list[int]:
    return [int(found) for found in re.findall(r'<tr class="event" data-id="(\d+)">', page.read_text())]


def test_view_with_stack_reads_the_whole_history_of_a_real_execution(
    deployed: LocalWorkflow, tmp_path: Path
) -> None:
    # Given an execution started in the deployed stack
    stack = DeployedStack(STACK)
    result = stack.run(stack.upload(BICYCLE.read_bytes(), "scones-run/view/bicycle.png"))
    name = result.execution_arn.rsplit(":", 1)[-1]
    # When `scones view ARN --stack` and `scones view --last --stack` write its page
    for arguments in ([result.execution_arn], ["--last"], [name]):
        outcome = CliRunner().invoke(
            view_command, [*arguments, "--stack", STACK, "--out", str(tmp_path / "pages")]
        )
        assert outcome.exit_code == 0, outcome.output
        assert f"{name}: SUCCEEDED, {len(result.history)} events" in outcome.output
    # Then the page lists every event of the execution's history
    page = tmp_path / "pages" / name / f"{name}.html"
    assert history_ids(page) == [event["id"] for event in result.history]


def test_run_records_its_executions_and_view_last_shows_the_latest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given `scones run` of two images in a fresh folder (it records its executions under .scones/)
    monkeypatch.chdir(tmp_path)
    ran = CliRunner().invoke(run, [str(BICYCLE), str(BICYCLE)])
    assert ran.exit_code == 0, ran.output
    index = re.findall(r"Execution pages: (file://\S+)", ran.output)
    assert index and Path(index[0].removeprefix("file://")).is_file()
    records = sorted((tmp_path / ".scones" / "executions").glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert len(records) == 2
    # When `scones view --last` runs after the local workflow is gone
    viewed = CliRunner().invoke(view_command, ["--last"])
    # Then it writes the latest execution's page from the record
    assert viewed.exit_code == 0, viewed.output
    name = records[-1].stem
    assert f"{name}: SUCCEEDED" in viewed.output
    assert history_ids(tmp_path / ".scones" / "view" / name / f"{name}.html")


def test_view_says_how_to_install_graphviz_when_dot_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no `dot` on PATH
    monkeypatch.setenv("PATH", str(tmp_path))
    # When the view is asked for / Then it fails with one line that says how to install it
    outcome = CliRunner().invoke(view_command, ["--last", "--records", str(tmp_path)])
    assert outcome.exit_code == 1
    assert "apt-get install graphviz" in outcome.output


def test_view_with_stack_draws_the_trace_x_ray_returns_for_the_execution(tmp_path: Path) -> None:
    # Given a stack in moto whose functions run with X-Ray active, and two executions in it
    with LocalWorkflow(model=StubModel([0.97, 0.03]), log_dir=tmp_path / "logs", tracing=True) as workflow:
        assert workflow.traces is not None
        create_stack(workflow)
        stack = DeployedStack(STACK)
        first, second = (
            stack.run(stack.upload(BICYCLE.read_bytes(), f"scones-run/view/{n}.png")) for n in (1, 2)
        )
        # and what their functions sent reaches X-Ray as the daemon sends it (PutTraceSegments, one JSON
        # document per segment or streamed subsegment)
        sent = [d.document for d in [*workflow.traces.function_segments, *workflow.traces.documents]]
        xray = boto3.client("xray")
        answer = xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in sent])
        assert answer["UnprocessedTraceSegments"] == []
        # When `scones view NAME --stack` writes the first one's page
        name = first.execution_arn.rsplit(":", 1)[-1]
        outcome = CliRunner().invoke(view_command, [name, "--stack", STACK, "--out", str(tmp_path / "pages")])
        assert outcome.exit_code == 0, outcome.output
        header = stack.sfn.describe_execution(executionArn=first.execution_arn)["traceHeader"]
        other = stack.sfn.describe_execution(executionArn=second.execution_arn)["traceHeader"]
    # Then its waterfall is the trace named by its DescribeExecution traceHeader, read with BatchGetTraces:
    # one bar per function it invoked, each with the handler and its AWS calls under it
    page = (tmp_path / "pages" / name / f"{name}.html").read_text()
    assert trace_root(header) in page and trace_root(other) not in page
    functions = re.findall(r'data-origin="AWS::Lambda::Function" data-name="(\w+)"', page)
    assert functions == [
        "SerializeImageDataFunction",
        "ClassifyImageFunction",
        "FilterInferencesFunction",
    ]
    assert page.count('data-name="## lambda_handler"') == 3
    assert 'data-name="runtime.sagemaker"' in page and "s3 GetObject" in page
    assert "<b>label</b>=bicycle" in page
