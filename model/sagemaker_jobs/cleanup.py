"""Delete an endpoint, its endpoint configuration(s) and their model(s) with the SDK's resource classes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from model.sagemaker_jobs.errors import SageMakerJobError, error_text, is_not_found
from model.sagemaker_jobs.sdk import assigned, prepare_boto_session, region_of, require_sdk
from model.sagemaker_jobs.validation import require_resource_name


@dataclass
class CleanupReport:
    deleted: list[str] = field(default_factory=list)  # "endpoint NAME", "endpoint configuration NAME", ...
    missing: list[str] = field(default_factory=list)


def _get(what: str, get: Callable[..., Any], **kwargs: Any) -> Any | None:
    """The resource, or None when SageMaker has nothing of that name."""
    try:
        return get(**kwargs)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise SageMakerJobError(f"describing {what} failed: {error_text(exc)}") from exc


def _delete(report: CleanupReport, label: str, resource: Any | None) -> None:
    if resource is None:
        report.missing.append(label)
        return
    try:
        resource.delete()
    except ClientError as exc:
        if not is_not_found(exc):  # gone between describing and deleting it: nothing left to do
            raise SageMakerJobError(f"deleting {label} failed: {error_text(exc)}") from exc
        report.missing.append(label)
        return
    report.deleted.append(label)


def cleanup_endpoint(session: boto3.session.Session, endpoint_name: str) -> CleanupReport:
    """Delete the endpoint, its endpoint configuration(s) and model(s); report what was not there.

    Names come from the live resources; where a link is missing (no endpoint, or no configuration)
    the names `deploy` gives (all equal to the endpoint's) are tried, so a half-finished deploy is
    cleaned up too. The endpoint is not waited for: its configuration and model may go while it is
    Deleting.
    """
    require_sdk("deleting a SageMaker endpoint")
    require_resource_name(endpoint_name, "endpoint name")
    region = region_of(session)
    prepare_boto_session(session)

    from sagemaker.core.resources import Endpoint, EndpointConfig, Model

    where = {"session": session, "region": region}
    endpoint = _get("the endpoint", Endpoint.get, endpoint_name=endpoint_name, **where)
    config_names = [str(endpoint.endpoint_config_name)] if endpoint is not None else [endpoint_name]
    configs = {
        name: _get("the endpoint configuration", EndpointConfig.get, endpoint_config_name=name, **where)
        for name in config_names
    }
    model_names = [
        str(variant.model_name)
        for config in configs.values()
        if config is not None
        for variant in assigned(config.production_variants) or []
    ] or [endpoint_name]

    report = CleanupReport()
    _delete(report, f"endpoint {endpoint_name}", endpoint)
    for name, config in configs.items():
        _delete(report, f"endpoint configuration {name}", config)
    for name in dict.fromkeys(model_names):
        _delete(report, f"model {name}", _get("the model", Model.get, model_name=name, **where))
    return report
