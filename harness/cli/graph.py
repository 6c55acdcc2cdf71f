"""`scones graph`: each state machine drawn from its ASL file (Graphviz), as the README shows it."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.console import console
from harness.cli.errors import one_line_errors
from harness.ops.view.graph import render, to_dot
from harness.ops.view.machine import Machine

ROOT = Path(__file__).resolve().parents[2]
STATE_MACHINE_DIR = ROOT / "statemachine"
DEFAULT_GRAPH_DIR = ROOT / "docs" / "img"


def graph_files(asl: Path, formats: tuple[str, ...] = ("svg",)) -> dict[str, bytes]:
    """`<name>.<format>` for one ASL file (`image_classification.asl.json` -> `image_classification.svg`)."""
    dot_text = to_dot(Machine.from_file(asl), title=asl.name)
    name = asl.name.removesuffix(".asl.json")
    return {f"{name}.{kind}": render(dot_text, kind) for kind in formats}


@click.command("graph")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_GRAPH_DIR,
    show_default=True,
    help="Where the files go.",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(["svg", "png"]),
    multiple=True,
    default=("svg",),
    show_default=True,
    help="Repeat for both (--format svg --format png).",
)
@click.argument(
    "asl_files",
    nargs=-1,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="[ASL_FILE]...",
)
@one_line_errors
def graph_command(out: Path, formats: tuple[str, ...], asl_files: tuple[Path, ...]) -> None:
    """Draw each state machine from its ASL file (default: every statemachine/*.asl.json) as SVG (or PNG),
    with Catch and Retry edges: the README's diagrams, so they cannot drift from the workflow."""
    out.mkdir(parents=True, exist_ok=True)
    for asl in asl_files or tuple(sorted(STATE_MACHINE_DIR.glob("*.asl.json"))):
        for name, data in graph_files(asl, formats).items():
            (out / name).write_bytes(data)
            console().print(f"{asl.name} -> {out / name} ({len(data):,} bytes)", soft_wrap=True)


__all__ = ["graph_command"]
