"""`scones cleanup`: delete the SageMaker endpoint, then the CloudFormation stack, and say what is left."""

from __future__ import annotations

import click

from harness.aws import aws_session
from harness.cli.errors import one_line_errors
from harness.cli.options import region_option
from harness.ops.cleanup import (
    default_stack_name,
    delete_stack,
    describe_stack,
    retained_bucket_lines,
    samconfig_endpoint_name,
)
from model.sagemaker_jobs.cleanup import CleanupReport, cleanup_endpoint
from model.sagemaker_jobs.endpoint import DEFAULT_ENDPOINT_NAME
from model.sagemaker_jobs.sdk import require_sdk


def _echo_report(report: CleanupReport) -> None:
    for item in report.deleted:
        click.echo(f"deleted {item}")
    for item in report.missing:
        click.echo(f"not found (nothing to delete): {item}")


@click.command("cleanup")
@click.option(
    "--stack",
    "stack_name",
    default=default_stack_name,
    show_default="samconfig.toml's stack_name",
    help="CloudFormation stack to delete.",
)
@click.option(
    "--endpoint-name",
    default=None,
    help="SageMaker endpoint to delete first [default: the stack's ClassifierEndpointName output, "
    f"then samconfig.toml's EndpointName, then {DEFAULT_ENDPOINT_NAME}].",
)
@region_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the stack is gone.")
@one_line_errors
def cleanup_command(
    stack_name: str, endpoint_name: str | None, region: str | None, yes: bool, wait: bool
) -> None:
    """Delete the SageMaker endpoint (endpoint, configuration, model), then the stack.

    The endpoint goes first: it is billed by the hour whether or not the stack exists, and the stack
    does not own it (docs/DEPLOY.md). The image bucket is kept (DeletionPolicy Retain); the command
    prints how to delete it. Deleting the endpoint needs the sagemaker extra, checked before anything goes.
    """
    require_sdk("scones cleanup")
    session = aws_session(region)
    region_name = str(session.region_name)
    cloudformation = session.client("cloudformation")
    facts = describe_stack(cloudformation, stack_name, region_name)
    endpoint = endpoint_name or facts.endpoint_name or samconfig_endpoint_name() or DEFAULT_ENDPOINT_NAME

    if not yes:
        click.confirm(
            f"Delete SageMaker endpoint {endpoint!r} (with its configuration and model) and then stack "
            f"{stack_name!r} in {region_name}?",
            abort=True,
            err=True,
        )
    _echo_report(cleanup_endpoint(session, endpoint))
    delete_stack(cloudformation, stack_name, wait=wait)
    click.echo(f"{'deleted' if wait else 'deleting'} stack {stack_name} ({region_name})")
    for line in retained_bucket_lines(facts, region_name):
        click.echo(line)
    click.echo(
        "kept for 7 days: the notification topic's KMS key, scheduled for deletion (KMS's waiting period)"
    )
