"""`scones cleanup`: delete the SageMaker endpoint, then the CloudFormation stack, and say what is left."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError, WaiterError

from model.sagemaker_cli import one_line_errors
from model.sagemaker_jobs.cleanup import CleanupReport, cleanup_endpoint
from model.sagemaker_jobs.endpoint import DEFAULT_ENDPOINT_NAME
from model.sagemaker_jobs.sdk import require_sdk
from model.stage_data import aws_session
from scones_common.exceptions import SconesError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMCONFIG = PROJECT_ROOT / "samconfig.toml"
FALLBACK_STACK_NAME = "scones-image-classification"


class StackNotFoundError(SconesError):
    """The CloudFormation stack to delete does not exist in the region."""


class StackDeletionError(SconesError):
    """CloudFormation refused to delete the stack, or the deletion ended DELETE_FAILED."""


@dataclass(frozen=True)
class StackFacts:
    """What the stack says about itself before it goes: the endpoint it calls and the bucket it keeps."""

    name: str
    endpoint_name: str | None
    image_bucket: str | None
    bucket_created_by_stack: bool


def _samconfig() -> dict[str, Any]:
    try:
        return tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def default_stack_name() -> str:
    """The stack `sam deploy` creates: samconfig.toml's [default.global.parameters] stack_name."""
    config = _samconfig()
    name = config.get("default", {}).get("global", {}).get("parameters", {}).get("stack_name")
    return str(name) if name else FALLBACK_STACK_NAME


def samconfig_endpoint_name() -> str | None:
    """EndpointName from samconfig.toml's deploy parameter_overrides, if it sets one."""
    overrides = (
        _samconfig().get("default", {}).get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    )
    match = re.search(r'EndpointName="?([^"\s]+)"?', str(overrides))
    return match.group(1) if match else None


def describe_stack(cloudformation: Any, stack_name: str, region: str) -> StackFacts:
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if "does not exist" in message:
            raise StackNotFoundError(
                f"stack {stack_name!r} not found in {region}; nothing was deleted (pass --stack and "
                "--region, or delete only the endpoint with `scones cleanup-endpoint --endpoint-name NAME`)"
            ) from exc
        raise
    outputs = {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    return StackFacts(
        name=stack_name,
        endpoint_name=outputs.get("ClassifierEndpointName") or parameters.get("EndpointName"),
        image_bucket=outputs.get("ImageBucketName"),
        bucket_created_by_stack=not parameters.get("ExistingBucketName"),
    )


def delete_stack(cloudformation: Any, stack_name: str, *, wait: bool, delay_seconds: int = 15) -> None:
    try:
        cloudformation.delete_stack(StackName=stack_name)
        if wait:
            cloudformation.get_waiter("stack_delete_complete").wait(
                StackName=stack_name, WaiterConfig={"Delay": delay_seconds, "MaxAttempts": 240}
            )
    except WaiterError as exc:
        stacks = (exc.last_response or {}).get("Stacks") or [{}]
        status = stacks[0].get("StackStatus") or exc.last_response.get("Error", {}).get("Message", exc)
        raise StackDeletionError(
            f"stack {stack_name!r} was not deleted ({status}); "
            f"see `aws cloudformation describe-stack-events --stack-name {stack_name}`"
        ) from exc


def retained_bucket_lines(facts: StackFacts, region: str) -> list[str]:
    if not facts.image_bucket:
        return []
    bucket = facts.image_bucket
    if not facts.bucket_created_by_stack:
        return [f"kept: image bucket {bucket} is yours (ExistingBucketName); the stack never changed it"]
    # Versioned: `aws s3 rb --force` deletes only current objects, and a bucket with versions left
    # cannot be deleted, hence the versions first.
    return [
        f"kept: image bucket {bucket} (DeletionPolicy Retain: the images outlive the stack). "
        "It is versioned; to delete it, empty every version first, then remove it:",
        f"  python -c \"import boto3; boto3.Session(region_name='{region}').resource('s3')"
        f".Bucket('{bucket}').object_versions.delete()\"",
        f"  aws s3 rb s3://{bucket} --region {region}",
    ]


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
@click.option(
    "--region",
    envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
    show_envvar=True,
    help="AWS region [default: $AWS_REGION, $AWS_DEFAULT_REGION, then the AWS config file; "
    "samconfig.toml deploys to us-east-1].",
)
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
