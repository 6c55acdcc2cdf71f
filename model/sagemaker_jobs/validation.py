"""Checks of names, ARNs and S3 URIs, made before anything is sent (and before the SDK is imported)."""

from __future__ import annotations

import re

from model.sagemaker_jobs.errors import InvalidSettingError, MissingRoleError

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_RESOURCE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")
# The SDK names a training job BASE-YYYYMMDDHHMMSS and cuts the result at 63 characters: a longer
# base would lose the timestamp's end.
MAX_BASE_JOB_NAME = 63 - len("-YYYYMMDDHHMMSS")


def require_role(role_arn: str | None) -> str:
    if not role_arn:
        raise MissingRoleError("no SageMaker execution role: pass --role arn:aws:iam::ACCOUNT:role/NAME")
    if not _ROLE_ARN.match(role_arn):
        raise MissingRoleError(f"--role {role_arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    return role_arn


def require_resource_name(name: str, what: str) -> str:
    if not _RESOURCE_NAME.match(name):
        raise InvalidSettingError(
            f"{what} {name!r} must be 1-63 letters, digits or hyphens, starting with a letter or digit"
        )
    return name


def require_base_job_name(name: str) -> str:
    require_resource_name(name, "training job base name")
    if len(name) > MAX_BASE_JOB_NAME:
        raise InvalidSettingError(
            f"training job base name {name!r} is longer than {MAX_BASE_JOB_NAME} characters "
            "(SageMaker adds a timestamp and allows 63)"
        )
    return name


def split_s3_uri(uri: str) -> tuple[str, str]:
    match = _S3_URI.match(uri)
    if not match:
        raise InvalidSettingError(f"{uri!r} is not an S3 object URI (s3://BUCKET/KEY)")
    return match["bucket"], match["key"]


def s3_key(prefix: str, *parts: str) -> str:
    """PREFIX/part/... with the prefix's slashes trimmed (an empty prefix adds nothing)."""
    root = prefix.strip("/")
    return "/".join([root, *parts] if root else parts)
