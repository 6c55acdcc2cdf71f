"""Deleting a deployed stack: what it says about itself first (its endpoint, its bucket), the deletion,
and what is left afterwards (the retained image bucket). `scones cleanup` runs it."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from harness.errors import ToolError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMCONFIG = PROJECT_ROOT / "samconfig.toml"
FALLBACK_STACK_NAME = "scones-image-classification"


class StackNotFoundError(ToolError):
    """The CloudFormation stack to delete does not exist in the region."""


class StackDeletionError(ToolError):
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
