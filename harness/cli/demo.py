"""`scones demo`: the bundled sample images through the local workflow."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.cli.errors import one_line_errors
from harness.cli.options import json_option, log_dir_option, model_dir_option
from harness.cli.results import Row, emit
from harness.cli.view import announce, write_run_view
from harness.samples import Sample, demo_samples

if TYPE_CHECKING:
    from harness.local.workflow import LocalWorkflow


@click.command("demo")
@json_option("One JSON object per line")
@click.option(
    "--threshold", type=click.FloatRange(0.0, 1.0), default=None, help="Override ConfidenceThreshold."
)
@log_dir_option
@model_dir_option
@one_line_errors
def demo(as_json: bool, threshold: float | None, log_dir: Path, model_dir: Path | None) -> None:
    """Run the bundled sample images through the local workflow and print the outcomes."""
    from harness.local.workflow import LocalWorkflow, load_model

    started = time.perf_counter()
    with LocalWorkflow(
        threshold=threshold, log_dir=log_dir, model=load_model(model_dir), tracing=True
    ) as workflow:
        setup = time.perf_counter() - started
        rows = _run_samples(workflow, demo_samples(), "test/")
        pages = write_run_view(workflow, [result for *_, result in rows], "scones demo: the sample images")
    title = (
        f"scones demo: {len(rows)} images through the real state machine on moto "
        f"(threshold {workflow.stack.parameters['ConfidenceThreshold']}, set-up {setup:.1f} s)"
    )
    emit(rows, as_json, title, f"Function logs: {log_dir}/")
    announce(pages, as_json)


def _run_samples(workflow: LocalWorkflow, samples: Iterable[Sample], prefix: str) -> list[Row]:
    rows = []
    for sample in samples:
        key = workflow.upload(sample.data, f"{prefix}{sample.name}")
        rows.append((sample.name, sample.expected, workflow.run(key)))
    return rows
