"""The SageMaker Python SDK v3: imported only inside the commands that use it, and set up the same way.

The SDK (`pip install -e '.[sagemaker]'`) brings about ninety packages and takes 2-3 s to import, so
nothing the CLI or a Lambda function loads at start imports it: the functions here and in the other
modules of this package import it when a command runs, after `require_sdk` has turned its absence
into one line that says how to install it.
"""

from __future__ import annotations

from typing import Any

import boto3

from harness.aws import MissingRegionError
from model.sagemaker_jobs.errors import SdkNotInstalledError

INSTALL_HINT = "pip install -e '.[sagemaker]'"
_SERVERLESS_FIX_ID = "scones-serverless-memory-size-key"


def require_sdk(command: str) -> None:
    """Raise SdkNotInstalledError (one line, with the install command) unless the SDK imports."""
    try:
        import sagemaker.core  # noqa: F401
    except ImportError as exc:
        missing = isinstance(exc, ModuleNotFoundError) and exc.name in ("sagemaker", "sagemaker.core")
        detail = "" if missing else f" (importing it failed: {exc})"
        raise SdkNotInstalledError(
            f"{command} needs the SageMaker Python SDK (the `sagemaker` extra): {INSTALL_HINT}{detail}"
        ) from exc


def region_of(session: boto3.session.Session) -> str:
    if not session.region_name:
        raise MissingRegionError("no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)")
    return str(session.region_name)


def prepare_boto_session(session: boto3.session.Session) -> boto3.session.Session:
    """Register this project's request fixes on a boto3 session, before the SDK makes clients from it.

    The SDK's resource classes take a boto3 session and make (and cache) their clients from it; a
    client copies the session's event handlers when it is made, hence "before". Registering twice
    is harmless (one unique id).
    """
    session.events.register(
        "before-parameter-build.sagemaker.CreateEndpointConfig",
        _fix_serverless_memory_size_key,
        unique_id=_SERVERLESS_FIX_ID,
    )
    return session


def _fix_serverless_memory_size_key(params: dict[str, Any], **_: Any) -> None:
    # aws/sagemaker-core#225 (open, still in sagemaker-core 2.27.0): the resource classes serialise
    # ProductionVariantServerlessConfig.memory_size_in_mb as "MemorySizeInMb", which botocore rejects
    # before sending ("Missing required parameter ... MemorySizeInMB"). Renamed here, in the request
    # botocore is about to validate; once the SDK sends the right key this finds nothing to rename.
    for variant in params.get("ProductionVariants") or []:
        config = variant.get("ServerlessConfig")
        if isinstance(config, dict) and "MemorySizeInMb" in config:
            config["MemorySizeInMB"] = config.pop("MemorySizeInMb")


def sdk_session(boto_session: boto3.session.Session, default_bucket: str) -> Any:
    """The SDK's own Session (for ModelTrainer) over `boto_session`, with its telemetry turned off.

    ModelTrainer.train reports each use to AWS (a background HTTPS request) unless the session's
    configuration says `SageMaker.PythonSDK.Modules.TelemetryOptOut: true`; no environment variable
    turns it off. The user's SDK configuration files are read as the SDK would, and the opt-out is
    added to what they say. The resource classes (Model, EndpointConfig, Endpoint) send none.
    """
    from sagemaker.core.config.config import load_sagemaker_config
    from sagemaker.core.helper.session_helper import Session

    config: dict[str, Any] = dict(load_sagemaker_config() or {})
    config.setdefault("SchemaVersion", "1.0")
    sagemaker_section = config.setdefault("SageMaker", {})
    modules = sagemaker_section.setdefault("PythonSDK", {}).setdefault("Modules", {})
    modules["TelemetryOptOut"] = True
    return Session(
        boto_session=prepare_boto_session(boto_session),
        default_bucket=default_bucket,
        sagemaker_config=config,
    )


def assigned(value: Any) -> Any:
    """None for the SDK's `Unassigned()` placeholder (a field SageMaker did not return), else the value."""
    from sagemaker.core.utils.utils import Unassigned

    return None if isinstance(value, Unassigned) else value
