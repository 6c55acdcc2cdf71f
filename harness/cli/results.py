"""What run, demo and the other execution commands print: a table of executions, or JSON lines."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from harness.cli.console import console
from harness.ops.execution import TERMINAL_STATUSES, ExecutionResult

STATE_COLUMNS = (
    ("SerializeImageData", "serialize"),
    ("ClassifyImage", "classify"),
    ("FilterInferences", "filter"),
)
Row = tuple[str, str | None, ExecutionResult]  # (image, its true class if known, the execution)


def result_record(image: str, result: ExecutionResult) -> dict[str, Any]:
    # A low-confidence image failed, but it was classified: report what the model said.
    output = result.output or result.state_output("ClassifyImage") or {}
    return {
        "image": image,
        "status": result.status,
        "error": result.error,
        "cause": result.message,
        "label": output.get("label"),
        "confidence": output.get("confidence"),
        "inferences": output.get("inferences"),
        "execution_arn": result.execution_arn,
        "seconds": round(result.seconds, 3),
        "states": {s.name: round(s.seconds, 3) for s in result.states},
    }


def _label_and_confidence(result: ExecutionResult) -> tuple[str, str]:
    """From the output, or, for a low-confidence failure, from the classification in its cause."""
    output = result.output or result.state_output("ClassifyImage") or {}
    if "label" in output and "confidence" in output:
        return str(output["label"]), f"{float(output['confidence']):.3f}"
    return "", ""


def render_table(rows: list[Row], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("image", no_wrap=True)
    table.add_column("label")
    table.add_column("confidence", justify="right")
    table.add_column("outcome", overflow="fold")
    for _, heading in STATE_COLUMNS:
        table.add_column(f"{heading} ms", justify="right")
    table.add_column("total ms", justify="right")
    for image, expected, result in rows:
        label, confidence = _label_and_confidence(result)
        if result.status == "SUCCEEDED":
            outcome = "[green]SUCCEEDED[/green]"
            if expected and label != expected:
                outcome += f" [yellow](true class: {expected})[/yellow]"
        else:
            # The image is already in the first column: drop the s3:// suffix some messages carry.
            message = (result.message or "").split(" (s3://")[0]
            message = message if len(message) <= 70 else message[:67] + "..."
            outcome = f"[red]{result.status}[/red] {result.error}: {message}"
        timings = {s.name: s.seconds for s in result.states}
        cells = [f"{timings[name] * 1000:.0f}" if name in timings else "-" for name, _ in STATE_COLUMNS]
        table.add_row(image, label, confidence, outcome, *cells, f"{result.seconds * 1000:.0f}")
    return table


def emit(rows: list[Row], as_json: bool, title: str, logs: str) -> None:
    out = console()
    if as_json:
        for image, _, result in rows:
            click.echo(json.dumps(result_record(image, result)))
        return
    out.print(render_table(rows, title))
    counts: dict[str, int] = {}
    for *_, result in rows:
        counts[result.status] = counts.get(result.status, 0) + 1
    unfinished = sum(n for status, n in counts.items() if status not in TERMINAL_STATUSES)
    out.print(
        f"{len(rows)} executions: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + (" (every one reached a terminal state). " if not unfinished else f" ({unfinished} not finished). ")
        + logs
    )
