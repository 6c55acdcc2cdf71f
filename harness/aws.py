"""The one home of what every command that talks to AWS needs: a session in a region, and the one line
an AWS error becomes."""

from __future__ import annotations

import boto3
from botocore.exceptions import ClientError

from harness.errors import ToolError

# Where a region comes from when --region is absent, in this order, then the AWS config file.
REGION_ENVIRONMENT = ("AWS_REGION", "AWS_DEFAULT_REGION")


class AwsSetupError(ToolError):
    """Something the AWS account or the local configuration lacks: region, credentials, bucket, role."""


class MissingRegionError(AwsSetupError):
    """No AWS region was given (--region, AWS_REGION, AWS_DEFAULT_REGION or the AWS config file)."""


class MissingCredentialsError(AwsSetupError):
    """boto3 found no AWS credentials."""


def aws_session(region: str | None) -> boto3.session.Session:
    """A boto3 session in `region` (or the configured default); MissingRegionError when there is none."""
    session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
    if not session.region_name:
        raise MissingRegionError("no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)")
    if session.get_credentials() is None:
        raise MissingCredentialsError(
            "no AWS credentials: configure a profile (aws configure / AWS_PROFILE) or set AWS_ACCESS_KEY_ID"
        )
    return session


def client_error_text(exc: ClientError) -> str:
    """`Code: Message` of an AWS error: the one line every command prints for it."""
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"
