"""The SageMaker commands' errors, one line each, and how AWS's and the SDK's failures map onto them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pydantic
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from harness.aws import AwsSetupError, MissingCredentialsError, MissingRegionError
from harness.aws import client_error_text as error_text
from harness.errors import MissingExtraError, ToolError


class SageMakerJobError(ToolError):
    """A SageMaker request failed or a job/endpoint ended badly; one line for the terminal."""


class InvalidSettingError(SageMakerJobError):
    """An option is out of range (instance count, serverless memory, endpoint name, S3 URI...)."""


class NotFoundError(SageMakerJobError):
    """A file or S3 object the command needs is missing (train.py, the train manifest, the model)."""


class MissingRoleError(AwsSetupError):
    """No SageMaker execution role ARN, or a value that is not an IAM role ARN."""


class SdkNotInstalledError(MissingExtraError):
    """The command needs the SageMaker Python SDK (the `sagemaker` extra), which is not installed."""


def is_not_found(exc: ClientError) -> bool:
    """SageMaker's answer for a missing model, endpoint configuration, endpoint or training job."""
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationException" and "Could not find" in str(error.get("Message", ""))


@contextmanager
def aws_call(what: str) -> Iterator[None]:
    """One SageMaker/S3 request (through the SDK or boto3), its failures mapped to one-line errors."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("AccessDeniedException", "AccessDenied") and "iam:PassRole" in str(exc):
            raise MissingRoleError(
                f"{what}: the caller may not pass the execution role ({error_text(exc)})"
            ) from exc
        raise SageMakerJobError(f"{what} failed: {error_text(exc)}") from exc
    except NoCredentialsError as exc:
        raise MissingCredentialsError(f"{what}: no AWS credentials") from exc
    except NoRegionError as exc:
        raise MissingRegionError(f"{what}: no AWS region") from exc
    except BotoCoreError as exc:
        raise SageMakerJobError(f"{what} failed: {exc}") from exc
    except pydantic.ValidationError as exc:
        # The SDK parses every request and answer into pydantic shapes; one that does not fit
        # (a value SageMaker would reject, or an answer the SDK does not expect) ends here.
        details = exc.errors()
        where = ".".join(str(part) for part in details[0]["loc"]) if details else ""
        message = details[0]["msg"] if details else str(exc)
        raise SageMakerJobError(
            f"{what}: the SageMaker SDK rejected {exc.title} ({where}: {message})"
        ) from exc
