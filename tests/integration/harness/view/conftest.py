"""Four executions of the real state machines on moto, recorded and written as view pages once per
module: the demo path, a low-confidence failure, an endpoint fault retried, and a batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cli.view import write_run_view
from harness.local.workflow import LocalWorkflow
from harness.ops.batch import run_batch
from harness.ops.execution import ExecutionResult
from harness.samples import SAMPLES_DIR
from tests.helpers import StubModel, png_bytes

CONFIDENT = [0.97, 0.03]
UNSURE = [0.6, 0.4]


@dataclass
class Viewed:
    """One execution as Step Functions told it while moto was up, and the page written for it."""

    result: ExecutionResult
    history: list[dict[str, Any]]  # GetExecutionHistory, asked again apart from the view's own reading
    page: Path


@pytest.fixture(scope="module")
def viewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Viewed]]:
    root = tmp_path_factory.mktemp("view")
    model = StubModel(list(CONFIDENT))
    bicycle = (SAMPLES_DIR / "bicycle" / "bicycle_s_000051.png").read_bytes()
    # Traced, as `scones run`, `demo` and `batch` are: each page has its execution's waterfall.
    with LocalWorkflow(model=model, log_dir=root / "logs", tracing=True) as workflow:
        assert workflow.endpoint is not None
        results: dict[str, ExecutionResult] = {}
        results["demo"] = workflow.run(workflow.upload(bicycle, "test/demo.png"))
        model.probabilities = list(UNSURE)
        results["low-confidence"] = workflow.run(workflow.upload(bicycle, "test/unsure.png"))
        model.probabilities = list(CONFIDENT)
        workflow.endpoint.inject("ThrottlingException", times=2)
        results["retried"] = workflow.run(workflow.upload(bicycle, "test/throttled.png"))
        for number in range(3):
            workflow.upload(png_bytes(color=(number * 60, 90, 30)), f"batch-view/{number}.png")
        workflow.upload(b"notes", "batch-view/README.txt")
        results["batch"] = run_batch(workflow, "batch-view/").execution
        histories = {
            name: workflow.sfn.get_execution_history(executionArn=r.execution_arn, maxResults=1000)["events"]
            for name, r in results.items()
        }
        index = write_run_view(
            workflow,
            list(results.values()),
            "view tests",
            view_dir=root / "pages",
            record_dir=root / "records",
        )
    assert isinstance(index, Path), index
    yield {
        name: Viewed(
            result, histories[name], index.parent / f"{result.execution_arn.rsplit(':', 1)[-1]}.html"
        )
        for name, result in results.items()
    }


def asl_states(file_name: str) -> tuple[list[str], list[str]]:
    """The top-level states of an ASL file and its Map states' ItemProcessor states, read now (other
    work changes the files)."""
    definition = json.loads((Path(__file__).resolve().parents[4] / "statemachine" / file_name).read_text())
    inner = [
        name
        for state in definition["States"].values()
        for name in state.get("ItemProcessor", {}).get("States", {})
    ]
    return list(definition["States"]), inner
