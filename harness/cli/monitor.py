"""`scones monitor`: charts and an HTML report from an endpoint's data capture, deployed or local."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3
import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from harness.cli.console import console
from harness.cli.errors import one_line_errors
from harness.cli.options import json_option, region_option
from harness.cli.view import DEFAULT_RECORD_DIR, DEFAULT_VIEW_DIR, write_run_view
from harness.errors import require_extra
from monitor.gallery import GALLERY_SIZE, least_confident
from monitor.html_report import write_report
from monitor.read import DEFAULT_PREFIX, Capture, read_capture
from monitor.summary import DEFAULT_THRESHOLD, Summary, summarize, summary_rows

DEFAULT_OUT = Path(".scones") / "monitor"
DEMO_LOG_DIR = Path(".scones") / "logs"


def demo_capture(
    threshold: float,
    repeat: int = 1,
    endpoint_name: str | None = None,
    log_dir: Path = DEMO_LOG_DIR,
    record_dir: Path = DEFAULT_RECORD_DIR,
    view_dir: Path = DEFAULT_VIEW_DIR,
) -> tuple[Capture, dict[str, Path]]:
    """The bundled samples through the local workflow, then its data capture read back from moto's S3;
    and each execution's page (by execution name), written as `scones demo` writes them."""
    from harness.local.workflow import LocalWorkflow, load_model
    from harness.samples import demo_samples

    samples = demo_samples()
    with LocalWorkflow(threshold=threshold, log_dir=log_dir, model=load_model(), tracing=True) as workflow:
        results = [
            workflow.run(workflow.upload(sample.data, f"test/{sample.name}"))
            for _ in range(repeat)
            for sample in samples
        ]
        assert workflow.capture is not None
        workflow.capture.flush()
        # Read before the workflow closes: moto's bucket goes with it.
        capture = read_capture(workflow.s3, workflow.bucket, workflow.capture.prefix, endpoint_name)
        index = write_run_view(
            workflow, results, "scones monitor --demo", view_dir=view_dir, record_dir=record_dir
        )
    names = [result.execution_arn.rsplit(":", 1)[-1] for result in results]
    pages = {name: index.parent / f"{name}.html" for name in names} if isinstance(index, Path) else {}
    return capture, pages


def local_links(
    capture: Capture, gallery_size: int, pages: dict[str, Path], out_dir: Path, record_dir: Path
) -> dict[str, str]:
    """The gallery's images linked to their execution pages (relative to the report), where known."""
    from harness.ops.view.links import match
    from harness.ops.view.record import load

    records = [load(record_dir / f"{name}.json") for name in pages if (record_dir / f"{name}.json").is_file()]
    found = match(records, _sent(capture, gallery_size))
    return {
        key: os.path.relpath(pages[record.name].resolve(), out_dir.resolve()) for key, record in found.items()
    }


def deployed_links(sfn: Any, state_machine_arn: str, capture: Capture, gallery_size: int) -> dict[str, str]:
    """The gallery's images linked to their executions in the Step Functions console, where known."""
    from harness.ops.view.links import console_url, match_deployed

    found = match_deployed(sfn, state_machine_arn, _sent(capture, gallery_size))
    return {key: console_url(arn) for key, arn in found.items()}


def _sent(capture: Capture, gallery_size: int) -> list[Any]:
    from harness.ops.view.links import SentImage

    return [
        SentImage(item.record.event_id, item.record.input_data, item.record.time)
        for item in least_confident(capture.records, gallery_size)
    ]


def summary_table(summary: Summary) -> Table:
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for metric, value in summary_rows(summary):
        table.add_row(metric, value)
    return table


@click.command("monitor")
@click.option(
    "--bucket",
    default=None,
    help="Read a deployed endpoint's capture from this bucket, with the default boto3 credentials.",
)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Capture prefix in the bucket.")
@click.option(
    "--endpoint-name", default=None, help="Only this endpoint's capture [default: every endpoint under it]."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Confidences below it count as low "
    f"[default: the stack's ConfidenceThreshold, else {DEFAULT_THRESHOLD}].",
)
@click.option(
    "--stack",
    "stack_name",
    default=None,
    help="Read the capture of this deployed stack's endpoint from its bucket (or --bucket), "
    "with its threshold.",
)
@region_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Where report.html and the PNG charts go.",
)
@json_option("The summary as one JSON object")
@click.option(
    "--demo",
    is_flag=True,
    help="No AWS: run the bundled samples through the local workflow, which captures like SageMaker, "
    "and report on that capture.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="With --demo: rounds of samples.",
)
@click.option(
    "--gallery", "gallery_size", type=click.IntRange(0, 100), default=GALLERY_SIZE, show_default=True
)
@one_line_errors
def monitor_command(
    bucket: str | None,
    prefix: str,
    endpoint_name: str | None,
    threshold: float | None,
    stack_name: str | None,
    region: str | None,
    out_dir: Path,
    as_json: bool,
    demo: bool,
    repeat: int,
    gallery_size: int,
) -> None:
    """Confidence, label mix and low-confidence rate over time from SageMaker data capture.

    Reads every record of every file under s3://BUCKET/PREFIX/ENDPOINT/AllTraffic/YYYY/MM/DD/HH/,
    writes PNG charts, a gallery of the least confident images and one self-contained report.html
    to --out, and prints a summary. Exits 1 when there is no record to report on.
    """
    if demo == (bucket is not None or stack_name is not None):
        raise click.UsageError(
            "give --stack NAME or --bucket BUCKET to read a deployed endpoint's capture, or --demo to "
            "capture the bundled samples locally (no AWS account needed)"
        )
    require_extra("monitor", "the monitor's charts need matplotlib", "matplotlib")
    session = boto3.Session(region_name=region)
    if stack_name is not None:
        from harness.ops.deployed import DeployedStackError, StackOutputs

        try:
            outputs = StackOutputs.read(session.client("cloudformation"), stack_name)
        except DeployedStackError as exc:
            raise click.ClickException(str(exc)) from None
        except BotoCoreError as exc:  # no region
            raise click.ClickException(f"stack {stack_name}: {exc}") from None
        # The capture bucket is the one given to `scones deploy --capture-bucket`: the stack's by default.
        bucket = bucket or outputs.bucket
        endpoint_name = endpoint_name or outputs.endpoint_name or None
        if threshold is None and outputs.threshold:
            threshold = float(outputs.threshold)
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    state_machine_arn = outputs.state_machine_arn if stack_name is not None else ""
    pages: dict[str, Path] = {}
    if demo:
        capture, pages = demo_capture(threshold, repeat, endpoint_name)
    else:
        assert bucket is not None
        try:
            capture = read_capture(session.client("s3"), bucket, prefix, endpoint_name)
        except (ClientError, BotoCoreError) as exc:
            raise click.ClickException(f"cannot read s3://{bucket}/{prefix}: {exc}") from None
    summary = summarize(capture, threshold)
    if not capture.records:
        click.echo(
            f"no data capture records under {summary.source} ({len(capture.files)} files); is data capture "
            "enabled on the endpoint (`scones deploy` without --serverless) and has it been invoked?",
            err=True,
        )
        sys.exit(1)
    if demo:
        links = local_links(capture, gallery_size, pages, out_dir, DEFAULT_RECORD_DIR)
    elif state_machine_arn:
        try:
            links = deployed_links(session.client("stepfunctions"), state_machine_arn, capture, gallery_size)
        except (ClientError, BotoCoreError) as exc:  # the report is still worth writing
            click.echo(f"images not linked to executions: {exc}", err=True)
            links = {}
    else:
        links = {}  # --bucket alone names no state machine
    files = write_report(capture, summary, out_dir, gallery_size, links)
    if as_json:
        record = summary.as_json()
        record["report"] = str(files.html)
        record["charts"] = {name: str(path) for name, path in files.charts.items()}
        click.echo(json.dumps(record))
        return
    out = console()
    out.print(f"scones monitor: {summary.records:,} captured inferences from {summary.source}")
    out.print(summary_table(summary))
    out.print(f"report: {files.html}  (charts: {', '.join(str(p) for p in files.charts.values())})")
