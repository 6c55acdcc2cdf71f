"""`scones stage-data`: the CIFAR-100 bicycle/motorcycle images staged for SageMaker training (S3)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.errors import one_line_errors
from harness.cli.options import region_option
from model.stage_data import DEFAULT_CLASSES, DEFAULT_PREFIX, parse_classes, stage


@click.command("stage-data")
@click.option(
    "--tarball",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A local cifar-100-python.tar.gz. Without it the official tarball is downloaded into --out.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/cifar100"),
    show_default=True,
    help="Where to write train/, test/, train.lst and test.lst.",
)
@click.option("--bucket", envvar="SCONES_BUCKET", show_envvar=True, help="S3 bucket for the staged data.")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="S3 key prefix.")
@click.option(
    "--classes",
    default=",".join(DEFAULT_CLASSES),
    show_default=True,
    help="CIFAR-100 fine label names, comma-separated; the label of each is its position here.",
)
@click.option("--no-upload", is_flag=True, help="Only write the local files.")
@region_option
@one_line_errors
def stage_data_command(
    tarball: Path | None,
    out_dir: Path,
    bucket: str | None,
    prefix: str,
    classes: str,
    no_upload: bool,
    region: str | None,
) -> None:
    """Extract CIFAR-100 classes as PNGs plus .lst manifests, and upload them for SageMaker."""
    if not no_upload and not bucket:
        raise click.UsageError("give --bucket (or $SCONES_BUCKET), or --no-upload")
    staged, report = stage(
        out_dir=out_dir,
        tarball=tarball,
        classes=parse_classes(classes),
        bucket=bucket,
        prefix=prefix,
        region=region,
        upload=not no_upload,
    )
    labels = ", ".join(f"{index}={name}" for index, name in enumerate(staged.classes))
    click.echo(f"classes: {labels}")
    for split in ("train", "test"):
        click.echo(f"{split}: {staged.count(split)} images, manifest {staged.manifest(split)}")
    if report is not None:
        click.echo(
            f"s3://{bucket}/{prefix.strip('/')}/: {len(report.uploaded)} uploaded, "
            f"{len(report.skipped)} already there"
        )
