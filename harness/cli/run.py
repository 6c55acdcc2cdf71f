"""`scones run`: one execution per image, locally or in a deployed stack."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.cli.errors import one_line_errors
from harness.cli.options import IMAGE_SUFFIXES, TargetOptions, fresh_prefix, json_option, target_options
from harness.cli.results import Row, emit
from harness.cli.view import announce, write_run_view
from harness.ops.execution import TERMINAL_STATUSES


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            )
        else:
            files.append(path)
    return files


@click.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@json_option("One JSON object per line")
@target_options
@one_line_errors
def run(paths: tuple[Path, ...], as_json: bool, target: TargetOptions) -> None:
    """Upload each image (or every image under a folder) and run one execution per image.

    Locally by default; with --stack, in the deployed stack (uploaded under scones-run/, outside the
    upload prefix, so that only the executions started here run; with an empty UploadPrefix every
    upload starts its own execution through the upload rule, and run waits for that one instead of
    starting a second). Exits 0 when every execution reached a terminal state, whatever that state.
    """
    files = _expand(paths)
    if not files:
        raise click.UsageError("no image files found in the paths given")
    prefix = "uploads/" if target.local else fresh_prefix("scones-run")
    with target.open() as workflow:
        rows: list[Row] = []
        for index, path in enumerate(files):
            key = workflow.upload(path.read_bytes(), f"{prefix}{index:05d}/{path.name}")
            rows.append((str(path), None, workflow.run(key)))
        pages = write_run_view(workflow, [result for *_, result in rows], f"scones run: {len(rows)} images")
    where = "" if target.local else f" on {target.where}"
    emit(rows, as_json, f"scones run: {len(rows)} images{where}", target.logs)
    announce(pages, as_json)
    if any(result.status not in TERMINAL_STATUSES for *_, result in rows):
        sys.exit(1)
