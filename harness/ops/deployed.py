"""The same operations as LocalWorkflow, against a deployed stack: its outputs name everything.

`scones run|batch|monitor|load --stack NAME` use this instead of the local workflow: upload to the
stack's bucket, start real executions, wait for them and read their histories, with the default boto3
credentials. Nothing here is local-only, so tests point it at a stack in moto.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

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

# The upload rule's key suffixes (template.yaml, ImageUploadedRule: a wildcard per suffix, case as
# written; tests/infrastructure/test_upload_rule.py checks the two agree).
UPLOAD_RULE_SUFFIXES = (".png", ".PNG", ".jpg", ".JPG", ".jpeg", ".JPEG")
# How long `run` waits for the execution the upload rule starts (EventBridge delivers in seconds).
RULE_START_TIMEOUT_SECONDS = 120.0

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
    "ImageUploadedRuleArn": "upload_rule_arn",
    "ResultsBusName": "results_bus",
    "ReviewQueueUrl": "review_queue_url",
    "NotificationTopicArn": "notification_topic_arn",
}


@dataclass(frozen=True)
class _RuleUpload:
    etag: str
    uploaded: datetime


def _is_upload(execution_input: dict[str, Any], key: str, etag: str) -> bool:
    """Whether an execution's input is the upload rule's input for this object (its key URL-encoded)."""
    event_key = str(execution_input.get("s3_key", ""))
    if execution_input.get("s3_key_encoding") == "url":
        event_key = unquote_plus(event_key)
    return event_key == key and execution_input.get("etag") == etag


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
    upload_rule_arn: str = ""
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

    def upload_rule_matches(self, key: str) -> bool:
        """Whether the stack's upload rule starts an execution for an upload of `key` (an empty
        UploadPrefix: every image in the bucket). False for a stack without the rule."""
        return (
            bool(self.upload_rule_arn)
            and key.startswith(self.upload_prefix)
            and key.endswith(UPLOAD_RULE_SUFFIXES)
        )


class DeployedStack(StartsExecutions):
    """A deployed stack, with the attributes and methods of LocalWorkflow that run, batch and load use."""

    def __init__(
        self,
        stack_name: str,
        *,
        region: str | None = None,
        session: boto3.Session | None = None,
        poll_seconds: float = 1.0,
        rule_start_timeout: float = RULE_START_TIMEOUT_SECONDS,
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
        self.rule_start_timeout = rule_start_timeout
        self._started_by_rule: dict[str, _RuleUpload] = {}  # uploads whose execution the rule starts
        self._claimed: set[str] = set()  # executions already matched to an upload

    def __enter__(self) -> DeployedStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    @property
    def threshold(self) -> str:
        return self.outputs.threshold

    @property
    def region(self) -> str:
        """The stack's region: its Step Functions quotas (harness/ops/quotas.py)."""
        return self.outputs.region

    def upload(self, data: bytes, key: str) -> str:
        if self.outputs.upload_prefix and key.startswith(self.outputs.upload_prefix):
            # The upload rule would start an execution of its own for it, besides the one we start.
            raise DeployedStackError(
                f"{key}: under the stack's upload prefix {self.outputs.upload_prefix!r}; "
                "choose another prefix (uploads there classify themselves)"
            )
        try:
            put = self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        except ClientError as exc:
            raise DeployedStackError(
                f"cannot upload s3://{self.bucket}/{key}: {client_error_text(exc)}"
            ) from None
        if self.outputs.upload_rule_matches(key):
            # An empty UploadPrefix: no key is outside the rule, so the rule starts this image's
            # execution and `run` waits for that one instead of starting a second.
            self._started_by_rule[key] = _RuleUpload(put["ETag"].strip('"'), datetime.now().astimezone())
        return key

    def run(self, key: str, *, image_data: str = "") -> ExecutionResult:
        """One execution of `key`: the one the upload rule started for it, else one started here."""
        upload = self._started_by_rule.pop(key, None)
        if upload is None:
            return super().run(key, image_data=image_data)
        return self.wait(self._execution_started_by_rule(key, upload))

    def _execution_started_by_rule(self, key: str, upload: _RuleUpload) -> str:
        """Find the execution whose input is this upload (key and ETag): the rule names it, not us.
        ListExecutions at most once per poll_seconds (its quota refills at 2-5/s)."""
        deadline = time.monotonic() + self.rule_start_timeout
        earliest = upload.uploaded - timedelta(minutes=1)  # clock skew
        others: set[str] = set()  # other images' executions, described once
        while True:
            page = self.sfn.list_executions(stateMachineArn=self.state_machine_arn, maxResults=100)
            for execution in page["executions"]:
                arn = str(execution["executionArn"])
                if arn in self._claimed or arn in others or execution["startDate"] < earliest:
                    continue
                described = self.sfn.describe_execution(executionArn=arn)
                if _is_upload(json.loads(described.get("input") or "{}"), key, upload.etag):
                    self._claimed.add(arn)
                    return arn
                others.add(arn)
            if time.monotonic() >= deadline:
                raise DeployedStackError(
                    f"{key}: the upload rule started no execution within {self.rule_start_timeout:g} s; "
                    "look for its event in the UploadEventsDeadLetterQueue"
                )
            time.sleep(self.poll_seconds)

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
