"""`scones cleanup-endpoint`: delete a SageMaker endpoint with its configuration and model."""

from __future__ import annotations

import click

from harness.aws import aws_session
from harness.cli.errors import one_line_errors
from harness.cli.options import region_option
from model.sagemaker_jobs.cleanup import cleanup_endpoint
from model.sagemaker_jobs.endpoint import (
    DEFAULT_ENDPOINT_NAME,
)
from model.sagemaker_jobs.sdk import require_sdk


@click.command("cleanup-endpoint")
@click.option("--endpoint-name", default=DEFAULT_ENDPOINT_NAME, show_default=True)
@region_option
@one_line_errors
def cleanup_endpoint_command(endpoint_name: str, region: str | None) -> None:
    """Delete the endpoint, its endpoint configuration and its model. Needs the sagemaker extra."""
    require_sdk("scones cleanup-endpoint")
    report = cleanup_endpoint(aws_session(region), endpoint_name)
    for item in report.deleted:
        click.echo(f"deleted {item}")
    for item in report.missing:
        click.echo(f"not found (nothing to delete): {item}")
    if not report.deleted:
        click.echo(f"nothing named {endpoint_name!r} was left to delete")
