"""`scones reliability`: every catalogued bad input and fault through the local workflow."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from harness.cli.console import console
from harness.cli.errors import one_line_errors
from harness.cli.options import json_option, log_dir_option


@click.command("reliability")
@json_option("One JSON object per case")
@click.option("--markdown", is_flag=True, help="Markdown tables, as in docs/RELIABILITY.md.")
@log_dir_option
@one_line_errors
def reliability(as_json: bool, markdown: bool, log_dir: Path) -> None:
    """Run every catalogued bad input and fault through the local workflow; print the outcomes.

    Exits 1 if any case ends other than as catalogued (harness/reliability/cases.py).
    """
    from harness.reliability.runner import rows_as_json, rows_as_markdown, run_catalogue

    rows = run_catalogue(log_dir)
    if as_json:
        click.echo(rows_as_json(rows))
    elif markdown:
        click.echo(rows_as_markdown(rows))
    else:
        out = console()
        for kind, title in (
            ("input", "Bad and awkward inputs"),
            ("event", "Malformed state machine input"),
            ("fault", "Injected faults (attempts counted from the execution history)"),
        ):
            table = Table(title=title, title_justify="left")
            for column in ("case", "expected", "status", "error", "attempts", "ok", "reason"):
                table.add_column(column, overflow="fold")
            for row in (r for r in rows if r.kind == kind):
                table.add_row(
                    row.name,
                    row.expected,
                    row.status,
                    row.error or "",
                    "" if row.attempts is None else str(row.attempts),
                    "[green]yes[/green]" if row.passed else "[red]NO[/red]",
                    row.reason,
                )
            out.print(table)
        failed = [row.name for row in rows if not row.passed]
        out.print(
            f"{len(rows)} cases: {len(rows) - len(failed)} as catalogued, {len(failed)} not"
            + (f": {', '.join(failed)}" if failed else "")
        )
    if any(not row.passed for row in rows):
        sys.exit(1)
