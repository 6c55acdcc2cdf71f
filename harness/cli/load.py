"""`scones load`: a steady rate of executions for a duration, with latency percentiles and outcomes."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.cli.console import console
from harness.cli.errors import one_line_errors
from harness.cli.options import IMAGE_SUFFIXES, TargetOptions, fresh_prefix, json_option, target_options
from harness.ops.load import LoadReport, run_load
from harness.samples import demo_samples


def _images(directory: Path | None) -> list[tuple[str, bytes]]:
    if directory is None:
        return [(sample.name, sample.data) for sample in demo_samples()]
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise click.UsageError(f"{directory}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return [(path.relative_to(directory).as_posix(), path.read_bytes()) for path in files]


def render_report(report: LoadReport) -> Table:
    # The heading goes above the table (printed by the command): a title would wrap to its width.
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("executions planned / started", f"{report.planned} / {report.started}")
    table.add_row("start rate achieved", f"{report.achieved_rate:.2f}/s")
    for code, count in sorted(report.start_errors.items()):
        table.add_row(f"[red]not started: {code}[/red]", str(count))
    for outcome, count in sorted(report.outcomes.items()):
        colour = "green" if outcome == "SUCCEEDED" else "yellow" if "THRESHOLD" in outcome else "red"
        table.add_row(f"[{colour}]{outcome}[/{colour}]", str(count))
    for name, value in report.percentiles().items():
        table.add_row(f"latency {name}", "-" if value is None else f"{value * 1000:.0f} ms")
    table.add_row("wall time", f"{report.wall_seconds:.1f} s")
    table.add_row("DescribeExecution polls", f"at most {report.describe_per_second:g}/s")
    return table


@click.command("load")
@click.option(
    "--rate", type=click.FloatRange(min=0.01), default=2.0, show_default=True, help="Executions per second."
)
@click.option(
    "--duration", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Seconds of starting."
)
@click.option(
    "--images",
    "images_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Send these images, round robin [default: the bundled samples].",
)
@click.option(
    "--max-start-rate",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Your account's StartExecution refill rate [default: the region's, harness/ops/quotas.py].",
)
@click.option(
    "--max-transition-rate",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Your account's StateTransition refill rate [default: the region's; new accounts have less].",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="After the last start, wait this long for executions to finish; the rest count as NOT_FINISHED.",
)
@json_option("The report as one JSON object")
@target_options
@one_line_errors
def load_command(
    rate: float,
    duration: float,
    images_dir: Path | None,
    max_start_rate: float | None,
    max_transition_rate: float | None,
    drain_timeout: float,
    as_json: bool,
    target: TargetOptions,
) -> None:
    """Start executions at a steady RATE for DURATION seconds and report latency p50/p95/p99 and outcomes.

    The images are uploaded once under load/<id>/ (outside the upload prefix), then sent round robin.
    Locally by default (one process: expect a few executions per second); with --stack, on AWS. A RATE
    above what the region's StartExecution or StateTransition quota sustains is refused, naming the
    quota; polling stays under 80 % of DescribeExecution's refill (harness/ops/quotas.py).
    Exits 1 if an execution could not be started or did not finish within --drain-timeout.
    """
    images = _images(images_dir)
    prefix = fresh_prefix("load")
    with target.open(tracing=False) as workflow:  # no pages: no traces
        keys = [workflow.upload(data, prefix + name) for name, data in images]
        run = functools.partial(
            run_load,
            workflow,
            keys,
            rate=rate,
            duration=duration,
            target_name=target.where,
            region=getattr(workflow, "region", None),
            max_start_rate=max_start_rate,
            max_transition_rate=max_transition_rate,
            drain_timeout=drain_timeout,
            # Local polls are moto calls competing with the executions for the GIL: fewer of them.
            describe_per_second=8.0 if target.local else None,
        )
        if as_json:
            report = run()
        else:
            with Progress(
                TextColumn("load"), BarColumn(), MofNCompleteColumn(),
                TextColumn("finished {task.fields[done]}"), TimeElapsedColumn(),
                console=console(), transient=True,
            ) as bar:  # fmt: skip
                task = bar.add_task("load", total=int(rate * duration), done=0)

                def show(started: int, done: int, planned: int) -> None:
                    bar.update(task, completed=started, total=planned, done=done)

                report = run(progress=show)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        out = console()
        out.print(f"scones load on {report.target}: {report.rate:g}/s for {report.duration:g} s")
        out.print(render_report(report))
    if report.start_errors or report.outcomes.get("NOT_FINISHED"):
        raise SystemExit(1)


__all__ = ["load_command"]
