"""The same operations as LocalWorkflow, against a deployed stack: its outputs name everything.

`scones run|batch|monitor|load --stack NAME` use this instead of the local workflow: upload to the
stack's bucket, start real executions, wait for them and read their histories, with the default boto3
credentials. Nothing here is local-only, so tests point it at a stack in moto.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from harness.aws import client_error_text
from harness.errors import ToolError
from harness.ops.execution import (
    BATCH_STATE_MACHINE_NAME,
    MAIN_STATE_MACHINE_NAME,
    TERMINAL_STATUSES,
    ExecutionResult,
    StartsExecutions,
    read_execution,
)
from harness.ops.view.trace import from_batch_get_traces

_READY = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}

# Output key -> attribute. Names as template.yaml's Outputs section spells them.
_REQUIRED_OUTPUTS = {
    "ImageBucketName": "bucket",
    "StateMachineArn": "state_machine_arn",
}
_OPTIONAL_OUTPUTS = {
    "BatchStateMachineArn": "batch_state_machine_arn",
    "ClassifierEndpointName": "endpoint_name",
    "ClassifierConfidenceThreshold": "threshold",
    "ImageUploadPrefix": "upload_prefix",
    "ResultsBusName": "results_bus",
    "ReviewQueueUrl": "review_queue_url",
    "NotificationTopicArn": "notification_topic_arn",
}


class DeployedStackError(ToolError):
    """The stack cannot be used: missing, not deployed, no credentials, or an output absent."""


@dataclass(frozen=True)
class StackOutputs:
    name: str
    region: str
    bucket: str
    state_machine_arn: str
    batch_state_machine_arn: str = ""
    endpoint_name: str = ""
    threshold: str = ""
    upload_prefix: str = ""
    results_bus: str = ""
    review_queue_url: str = ""
    notification_topic_arn: str = ""

    @classmethod
    def read(cls, cloudformation: Any, stack_name: str) -> StackOutputs:
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            raise DeployedStackError(f"stack {stack_name!r}: {client_error_text(exc)}") from None
        except NoCredentialsError:
            raise DeployedStackError(
                "no AWS credentials: configure them (aws configure, AWS_PROFILE) to use --stack"
            ) from None
        except BotoCoreError as exc:
            raise DeployedStackError(f"stack {stack_name!r}: {exc}") from None
        stack = stacks[0]
        if stack["StackStatus"] not in _READY:
            raise DeployedStackError(
                f"stack {stack_name!r} is {stack['StackStatus']}, not deployed (want one of {sorted(_READY)})"
            )
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        missing = [key for key in _REQUIRED_OUTPUTS if key not in outputs]
        if missing:
            raise DeployedStackError(
                f"stack {stack_name!r} has no output {', '.join(missing)}: is it this project's template?"
            )
        values = {
            attribute: outputs[key]
            for key, attribute in {**_REQUIRED_OUTPUTS, **_OPTIONAL_OUTPUTS}.items()
            if key in outputs
        }
        return cls(name=stack_name, region=cloudformation.meta.region_name, **values)


class DeployedStack(StartsExecutions):
    """A deployed stack, with the attributes and methods of LocalWorkflow that run, batch and load use."""

    def __init__(
        self,
        stack_name: str,
        *,
        region: str | None = None,
        session: boto3.Session | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        try:
            self.session = session or boto3.Session(region_name=region)
            # Standard retry mode backs off on throttling (DescribeExecution, StartExecution quotas).
            config = Config(retries={"mode": "standard", "max_attempts": 8})
            cloudformation = self.session.client("cloudformation", config=config)
        except NoRegionError:
            raise DeployedStackError(
                "no AWS region: pass --region, or set AWS_DEFAULT_REGION or a region in your AWS profile"
            ) from None
        self.outputs = StackOutputs.read(cloudformation, stack_name)
        self.s3 = self.session.client("s3", config=config)
        self.sfn = self.session.client("stepfunctions", config=config)
        self.xray = self.session.client("xray", config=config)
        self.bucket = self.outputs.bucket
        self.state_machine_arn = self.outputs.state_machine_arn
        self.state_machine_arns = {MAIN_STATE_MACHINE_NAME: self.outputs.state_machine_arn}
        if self.outputs.batch_state_machine_arn:
            self.state_machine_arns[BATCH_STATE_MACHINE_NAME] = self.outputs.batch_state_machine_arn
        self.poll_seconds = poll_seconds

    def __enter__(self) -> DeployedStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    @property
    def threshold(self) -> str:
        return self.outputs.threshold

    def upload(self, data: bytes, key: str) -> str:
        if self.outputs.upload_prefix and key.startswith(self.outputs.upload_prefix):
            # The upload rule would start an execution of its own for it, besides the one we start.
            raise DeployedStackError(
                f"{key}: under the stack's upload prefix {self.outputs.upload_prefix!r}; "
                "choose another prefix (uploads there classify themselves)"
            )
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        except ClientError as exc:
            raise DeployedStackError(
                f"cannot upload s3://{self.bucket}/{key}: {client_error_text(exc)}"
            ) from None
        return key

    def wait(self, execution_arn: str, timeout_seconds: float = 900.0) -> ExecutionResult:
        """Poll until the execution ends; past the timeout, return it as it is (still RUNNING)."""
        deadline = time.monotonic() + timeout_seconds
        delay = min(0.25, self.poll_seconds)
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] in TERMINAL_STATUSES or time.monotonic() >= deadline:
                return read_execution(self.sfn, described)
            time.sleep(delay)
            delay = min(delay * 1.5, self.poll_seconds)

    def segments(self, trace_id: str) -> list[dict[str, Any]]:
        """The trace's segments from X-Ray (BatchGetTraces); none while X-Ray has not processed them yet
        (it takes seconds to a minute after the execution) or when the trace is unknown."""
        if not trace_id:
            return []
        pages = self.xray.get_paginator("batch_get_traces").paginate(TraceIds=[trace_id])
        return from_batch_get_traces(
            {"Traces": [trace for page in pages for trace in page.get("Traces", [])]}
        )

    def ended(self, described: dict[str, Any]) -> None:
        """Nothing to do: on AWS, Step Functions itself sends the status change to EventBridge."""
