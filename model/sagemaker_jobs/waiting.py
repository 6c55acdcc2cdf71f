"""Waiting for a training job or an endpoint: the SDK resource's `refresh()`, polled until it settles.

The resources have waits of their own (`TrainingJob.wait`, `Endpoint.wait_for_status`), but they draw
a rich panel on stdout, where the commands print their results, and `wait_for_status("InService")`
keeps waiting on an endpoint that went OutOfService. This loop reports each status to the caller
(the CLI's spinner on stderr) and stops on any end state, with the failure reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from model.sagemaker_jobs.errors import SageMakerJobError, aws_call
from model.sagemaker_jobs.sdk import assigned

StatusCallback = Callable[[str, float], None]
Sleep = Callable[[float], None]


def wait_until(
    what: str,
    resource: Any,
    status_of: Callable[[Any], str],
    *,
    done: frozenset[str],
    failed: frozenset[str],
    poll_seconds: float,
    timeout_seconds: float,
    on_status: StatusCallback | None,
    sleep: Sleep = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Refresh `resource` until its status is in `done` (returned) or `failed` (SageMakerJobError)."""
    started = clock()
    while True:
        with aws_call(f"checking {what}"):
            resource.refresh()
        status = status_of(resource)
        if on_status is not None:
            on_status(status, clock() - started)
        if status in done:
            return status
        if status in failed:
            reason = assigned(getattr(resource, "failure_reason", None)) or "no reason given"
            raise SageMakerJobError(f"{what} ended {status}: {reason}")
        if clock() - started > timeout_seconds:
            raise SageMakerJobError(f"{what} still {status} after {timeout_seconds:.0f} s; stopped waiting")
        sleep(poll_seconds)


def _training_status(job: Any) -> str:
    status = str(assigned(job.training_job_status) or "Unknown")
    secondary = assigned(job.secondary_status)
    return f"{status} ({secondary})" if secondary and secondary != status else status


def wait_for_training_job(
    job: Any,
    *,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 6 * 3600,
    on_status: StatusCallback | None = None,
    sleep: Sleep = time.sleep,
) -> str:
    """Until the job (a `sagemaker.core.resources.TrainingJob`) Completed; Failed/Stopped raise."""
    return wait_until(
        f"training job {job.training_job_name}",
        job,
        _training_status,
        done=frozenset({"Completed"}),
        failed=frozenset({"Failed", "Stopped"}),
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        on_status=on_status,
        sleep=sleep,
    )


def wait_for_endpoint(
    endpoint: Any,
    *,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 3600,
    on_status: StatusCallback | None = None,
    sleep: Sleep = time.sleep,
) -> str:
    """Until the endpoint (a `sagemaker.core.resources.Endpoint`) is InService; Failed/OutOfService raise."""
    return wait_until(
        f"endpoint {endpoint.endpoint_name}",
        endpoint,
        lambda resource: str(assigned(resource.endpoint_status) or "Unknown"),
        done=frozenset({"InService"}),
        failed=frozenset({"Failed", "OutOfService"}),
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        on_status=on_status,
        sleep=sleep,
    )
