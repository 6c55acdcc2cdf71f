"""`scones load`: a steady rate of executions for a duration, with latency percentiles and outcomes."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.cli.console import console
from harness.cli.errors import one_line_errors
from harness.cli.options import IMAGE_SUFFIXES, TargetOptions, fresh_prefix, json_option, target_options
from harness.ops.accounting import Accounting
from harness.ops.load import LoadReport, planned_starts, run_load
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


def render_accounting(accounting: Accounting) -> Table:
    table = Table()
    table.add_column("accounted for")
    table.add_column("value", justify="right")
    table.add_row("started", str(accounting.started))
    table.add_row("finished (by outcome: above)", str(accounting.finished))
    table.add_row("faults injected", str(sum(accounting.faults.values())))
    if accounting.faults_not_reached:
        table.add_row("  not reached (the image failed before)", str(accounting.faults_not_reached))
    retried = f"{accounting.retried_executions} / {accounting.total_retries}"
    table.add_row("retried executions / retries", retried)
    for state, count in sorted(accounting.retries.items()):
        table.add_row(f"  retries of {state}", str(count))
    table.add_row("announced on NotificationTopic", str(accounting.announced))
    table.add_row("waiting in ReviewQueue", str(accounting.in_review))
    table.add_row("not as catalogued", str(len(accounting.not_as_catalogued)))
    unaccounted = len(accounting.unaccounted)
    colour = "red" if unaccounted else "green"
    table.add_row(f"[{colour}]unaccounted[/{colour}]", str(unaccounted))
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
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Start this many executions (at RATE), instead of starting for DURATION seconds.",
)
@click.option(
    "--faults",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Locally: the share of images given a fault of the catalogue (scones reliability), drawn by --seed.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault draw.")
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
    count: int | None,
    faults: float,
    seed: int,
    as_json: bool,
    target: TargetOptions,
) -> None:
    """Start executions at a steady RATE for DURATION seconds and report latency p50/p95/p99 and outcomes.

    The images are uploaded once under load/<id>/ (outside the upload prefix), then sent round robin.
    Locally by default (one process: expect a few executions per second); with --stack, on AWS. A RATE
    above what the region's StartExecution or StateTransition quota sustains is refused, naming the
    quota; polling stays under 80 % of DescribeExecution's refill (harness/ops/quotas.py).
    Locally, every execution is then accounted for: one terminal record with its reason, each failure
    announced once on NotificationTopic, each low-confidence image once in ReviewQueue; --faults gives
    that share of the images (each its own copy) a fault of the catalogue, which must end as catalogued.
    Exits 1 if an execution could not be started, did not finish within --drain-timeout, is
    unaccounted, or a fault did not end as catalogued.
    """
    if faults and not target.local:
        raise click.UsageError(
            "--faults: not with --stack (faults are injected into the local endpoint and Lambda service; "
            "a deployed stack's cannot be)"
        )
    images = _images(images_dir)
    prefix = fresh_prefix("load")
    planned = planned_starts(rate, duration, count)
    accounting: Accounting | None = None
    with target.open(tracing=False) as workflow:  # no pages: no traces
        if faults:
            # A fault is armed for one image: each execution gets its own copy of one of the images.
            names = [f"{i:05d}-{images[i % len(images)][0].replace('/', '-')}" for i in range(planned)]
            keys = [workflow.upload(images[i % len(images)][1], prefix + n) for i, n in enumerate(names)]
        else:
            keys = [workflow.upload(data, prefix + name) for name, data in images]
        options: dict[str, Any] = dict(
            rate=rate,
            duration=duration,
            count=count,
            target_name=target.where,
            region=getattr(workflow, "region", None),
            max_start_rate=max_start_rate,
            max_transition_rate=max_transition_rate,
            drain_timeout=drain_timeout,
            # Local polls are moto calls competing with the executions for the GIL: fewer of them.
            describe_per_second=8.0 if target.local else None,
        )
        if target.local:
            from harness.local.workflow import LocalWorkflow
            from harness.reliability.under_load import run_accounted_load

            assert isinstance(workflow, LocalWorkflow)
            local = workflow

            def run(**extra: Any) -> LoadReport:
                nonlocal accounting
                report, accounting = run_accounted_load(
                    local, keys, share=faults, seed=seed, **options, **extra
                )
                return report
        else:
            run = functools.partial(run_load, workflow, keys, **options)
        if as_json:
            report = run()
        else:
            with Progress(
                TextColumn("load"), BarColumn(), MofNCompleteColumn(),
                TextColumn("finished {task.fields[done]}"), TimeElapsedColumn(),
                console=console(), transient=True,
            ) as bar:  # fmt: skip
                task = bar.add_task("load", total=planned, done=0)

                def show(started: int, done: int, planned: int) -> None:
                    bar.update(task, completed=started, total=planned, done=done)

                report = run(progress=show)
    if as_json:
        document = report.to_dict()
        if accounting is not None:
            document["accounting"] = {**accounting.to_dict(), "faults_share": faults, "seed": seed}
        click.echo(json.dumps(document))
    else:
        out = console()
        out.print(f"scones load on {report.target}: {report.rate:g}/s for {report.duration:g} s")
        out.print(render_report(report))
        if accounting is not None:
            with_faults = f", faults {faults:g} (seed {seed})" if faults else ""
            out.print(f"every execution accounted for{with_faults}")
            out.print(render_accounting(accounting))
            for line in accounting.not_as_catalogued:
                out.print(f"[red]not as catalogued[/red] {line}")
            if accounting.unaccounted:
                for line in accounting.unaccounted:
                    out.print(f"[red]unaccounted[/red] {line}")
            else:
                out.print("unaccounted: 0")
    if report.start_errors or report.outcomes.get("NOT_FINISHED"):
        raise SystemExit(1)
    if accounting is not None and (accounting.unaccounted or accounting.not_as_catalogued):
        raise SystemExit(1)


__all__ = ["load_command"]
