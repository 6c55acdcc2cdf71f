"""`scones view`: an execution's page (the graph with the path it took, its history, each state's input
and output), for a local execution `scones run|demo|batch` recorded or, with --stack, a real one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from harness.cli.console import console
from harness.cli.errors import one_line_errors
from harness.cli.options import region_option, stack_option
from harness.errors import ToolError, UnusableInputError
from harness.ops.execution import ExecutionResult, WorkflowTarget
from harness.ops.view.graph import GraphvizMissingError, dot_binary
from harness.ops.view.page import write_view
from harness.ops.view.record import ExecutionRecord, fetch, load, save

DEFAULT_VIEW_DIR = Path(".scones") / "view"
# Local executions live in moto's memory: each command that runs some keeps their records here.
DEFAULT_RECORD_DIR = Path(".scones") / "executions"


def write_run_view(
    workflow: WorkflowTarget,
    results: list[ExecutionResult],
    title: str,
    *,
    view_dir: Path = DEFAULT_VIEW_DIR,
    record_dir: Path = DEFAULT_RECORD_DIR,
) -> Path | str:
    """Record each execution (while moto still holds it) and write the run's pages: the index's path,
    or why there are none (the run itself does not fail for want of Graphviz)."""
    try:
        dot_binary()
    except GraphvizMissingError as exc:
        return f"not written: {exc}"
    records = [
        fetch(
            workflow.sfn,
            result.execution_arn,
            history=result.history,
            s3=workflow.s3,
            segments=workflow.segments,
        )
        for result in results
    ]
    for record in records:
        save(record, record_dir)
    return write_view(records, view_dir / time.strftime("%Y%m%d-%H%M%S"), title)


def announce(pages: Path | str, as_json: bool = False) -> None:
    """Where the pages are; nothing with --json, whose output is JSON only (the records still are kept,
    so `scones view --last` or `scones view ARN` finds them)."""
    if not as_json:
        text = f"Execution pages: {pages.resolve().as_uri() if isinstance(pages, Path) else pages}"
        console().print(text, soft_wrap=True)


def _local_record(execution: str | None, record_dir: Path) -> ExecutionRecord:
    files = sorted(record_dir.glob("*.json"), key=lambda p: p.stat().st_mtime) if record_dir.is_dir() else []
    if execution is None:
        if not files:
            raise UnusableInputError(
                f"no local executions recorded under {record_dir}/: run `scones demo` or `scones run` first"
            )
        return load(files[-1])
    name = execution.rsplit(":", 1)[-1]
    path = record_dir / f"{name}.json"
    if not path.is_file():
        raise UnusableInputError(
            f"{execution}: no local execution of that name under {record_dir}/ "
            "(for an execution in a deployed stack, add --stack NAME)"
        )
    return load(path)


def _deployed_record(execution: str | None, stack_name: str, region: str | None) -> ExecutionRecord:
    from harness.ops.deployed import DeployedStack

    stack = DeployedStack(stack_name, region=region)
    sfn: Any = stack.sfn
    if execution is None:
        listed = sfn.list_executions(stateMachineArn=stack.state_machine_arn, maxResults=1)["executions"]
        if not listed:
            raise ToolError(f"stack {stack_name}: its state machine has no executions yet")
        execution = str(listed[0]["executionArn"])
    elif not execution.startswith("arn:"):
        execution = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{execution}"
    return fetch(sfn, execution, s3=stack.s3, segments=stack.segments)


@click.command("view")
@click.argument("execution", required=False)
@click.option(
    "--last",
    is_flag=True,
    help="The latest execution (locally: the latest one recorded; with --stack: of the image state machine).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_VIEW_DIR,
    show_default=True,
    help="Where the pages go (one folder per execution).",
)
@click.option(
    "--records",
    "record_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RECORD_DIR,
    show_default=True,
    help="Local: where run, demo and batch recorded their executions.",
)
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also save the top of the page as this PNG (headless Chromium's --screenshot).",
)
@click.option(
    "--screenshot-height",
    type=click.IntRange(300, 10000),
    default=1500,
    show_default=True,
    help="How much of the page the screenshot shows, in pixels (1,300 wide).",
)
@stack_option
@region_option
@one_line_errors
def view_command(
    execution: str | None,
    last: bool,
    out: Path,
    record_dir: Path,
    screenshot: Path | None,
    screenshot_height: int,
    stack_name: str | None,
    region: str | None,
) -> None:
    """Write an execution's page: the state machine drawn from its ASL (Graphviz), each state coloured by
    what happened, Catch and Retry edges, the trace's waterfall (X-Ray), the event history, each state's
    input and output, the image.

    EXECUTION is an execution ARN or name; or --last. Locally, the executions `scones run`, `demo`
    and `batch` recorded; with --stack, the stack's executions (GetExecutionHistory)."""
    if (execution is None) == (not last):
        raise click.UsageError("give an EXECUTION (ARN or name) or --last, not both")
    dot_binary()  # before any AWS call: say how to install Graphviz
    if stack_name is None:
        record = _local_record(execution, record_dir)
    else:
        record = _deployed_record(execution, stack_name, region)
    index = write_view([record], out / record.name, f"{record.name}: {record.status}")
    page = index.parent / f"{record.name}.html"
    out_console = console()
    out_console.print(
        f"{record.name}: {record.status}, {len(record.history)} events"
        + (f", {len(record.children)} child executions" if record.children else ""),
        soft_wrap=True,
    )
    out_console.print(f"Execution page: {page.resolve().as_uri()}", soft_wrap=True)
    if screenshot is not None:
        from harness.ops.view.screenshot import screenshot as take

        out_console.print(f"Screenshot: {take(page, screenshot, height=screenshot_height)}", soft_wrap=True)


__all__ = ["announce", "view_command", "write_run_view"]
