"""`scones batch`: classify a directory or an S3 prefix with the batch state machine (a Distributed Map)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.cli.console import console
from harness.cli.errors import one_line_errors
from harness.cli.options import TargetOptions, fresh_prefix, json_option, target_options
from harness.cli.view import announce, write_run_view
from harness.ops.batch import BatchRun, run_batch
from harness.ops.execution import BATCH_STATE_MACHINE_NAME, WorkflowTarget


def upload_directory(workflow: WorkflowTarget, directory: Path, prefix: str) -> int:
    """Every file under `directory` (images or not: the batch records what it skips) under `prefix`."""
    files = sorted(path for path in directory.rglob("*") if path.is_file())
    for path in files:
        workflow.upload(path.read_bytes(), prefix + path.relative_to(directory).as_posix())
    return len(files)


def render_summary(batch: BatchRun) -> Table:
    table = Table()
    table.add_column("outcome")
    table.add_column("detail")
    table.add_column("objects", justify="right")
    summary = batch.summary
    for label, count in summary.get("labels", {}).items():
        table.add_row("[green]CLASSIFIED[/green]", label, str(count))
    for label, count in summary.get("low_confidence_labels", {}).items():
        table.add_row(
            "[yellow]LOW_CONFIDENCE[/yellow]", f"{label} (THRESHOLD_CONFIDENCE_NOT_MET)", str(count)
        )
    for error, count in summary.get("failures", {}).items():
        examples = ", ".join(summary.get("failure_examples", {}).get(error, [])[:3])
        table.add_row("[red]FAILED[/red]", f"{error}: {examples}", str(count))
    if summary.get("skipped"):
        table.add_row("SKIPPED", "NotAnImageKey (no image suffix)", str(summary["skipped"]))
    table.add_row("[bold]total[/bold]", "", f"[bold]{summary.get('total', 0)}[/bold]")
    return table


@click.command("batch")
@click.argument("source")
@json_option("The summary as one JSON object")
@click.option(
    "--max-concurrency",
    type=click.IntRange(1, 1000),
    default=None,
    help="Local: override BatchMaxConcurrency.",
)
@target_options
@one_line_errors
def batch_command(source: str, as_json: bool, max_concurrency: int | None, target: TargetOptions) -> None:
    """Classify a whole directory (uploaded under batch/<id>/) or an existing prefix of the bucket
    (s3://BUCKET/PREFIX or PREFIX) with the batch state machine: one Distributed Map, one summary.

    Locally by default; with --stack, in the deployed stack's bucket and batch state machine."""
    overrides = {"BatchMaxConcurrency": str(max_concurrency)} if max_concurrency else {}
    directory = Path(source)
    with target.open(parameter_overrides=overrides) as workflow:
        if BATCH_STATE_MACHINE_NAME not in workflow.state_machine_arns:
            raise click.ClickException(f"{target.where} has no BatchStateMachineArn output")
        if directory.is_dir():
            prefix = fresh_prefix("batch")
            if upload_directory(workflow, directory, prefix) == 0:
                raise click.UsageError(f"{source}: the directory holds no files")
        else:
            prefix = source.removeprefix(f"s3://{workflow.bucket}/").removeprefix("s3://")
        if (
            workflow.s3.list_objects_v2(Bucket=workflow.bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0)
            == 0
        ):
            raise click.UsageError(
                f"{source}: no directory, and no objects under s3://{workflow.bucket}/{prefix}"
            )
        # DescribeExecution and DescribeMapRun have quotas on AWS: poll a deployed batch less often.
        poll_seconds = 0.2 if target.local else 2.0
        if as_json:
            batch = run_batch(workflow, prefix, poll_seconds=poll_seconds)
        else:
            with Progress(
                TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console(), transient=True,
            ) as bar:  # fmt: skip
                task = bar.add_task("batch", total=None)
                batch = run_batch(
                    workflow,
                    prefix,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                    poll_seconds=poll_seconds,
                )
        pages = write_run_view(workflow, [batch.execution], f"scones batch: {batch.prefix}")
    if as_json:
        record = {
            "prefix": batch.prefix,
            "status": batch.status,
            "error": batch.execution.error,
            "cause": batch.execution.message,
            "objects": batch.objects,
            "seconds": round(batch.seconds, 3),
            "images_per_second": round(batch.images_per_second, 2),
            "summary": batch.summary,
        }
        click.echo(json.dumps(record))
    else:
        out = console()
        if batch.summary:
            out.print(f"batch {batch.prefix}: {batch.objects} objects")
            out.print(render_summary(batch))
        out.print(
            f"{batch.status}: {batch.objects} objects in {batch.seconds:.1f} s "
            f"({batch.images_per_second:.1f} objects/s). Results: {batch.summary.get('manifest', '-')}"
            + (f"\n{batch.execution.error}: {batch.execution.message}" if batch.status != "SUCCEEDED" else "")
        )
    announce(pages, as_json)
    if batch.status != "SUCCEEDED":
        raise SystemExit(1)


__all__ = ["batch_command"]
