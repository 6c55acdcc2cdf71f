"""The whole workflow on this machine: moto's S3 and Step Functions, the real ASL, the real handlers."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import boto3
from moto import mock_aws

from harness import moto_engine
from harness.aws_hooks import AwsHooks
from harness.capture import DataCaptureWriter
from harness.endpoint import LocalEndpoint, ServesModel
from harness.eventbridge import LocalEventBridge, execution_status_change, object_created
from harness.lambda_runtime import MAX_STATE_PAYLOAD_BYTES, LocalFunction, wait_for_running_invocations
from harness.template import ACCOUNT_ID, REGION, Stack, read_stack

_LOCAL_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/scones-local-state-machine"
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class ExecutionInputTooLargeError(ValueError):
    """StartExecution refuses input over 256 KB; so does the harness."""


@dataclass
class StateTiming:
    name: str
    seconds: float


@dataclass
class ExecutionResult:
    """One execution, as `describe_execution` and its history tell it."""

    execution_arn: str
    status: str
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    seconds: float
    states: list[StateTiming] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def message(self) -> str | None:
        """The cause's errorMessage when the cause is a Lambda error payload, else the cause itself."""
        if not self.cause:
            return None
        try:
            parsed = json.loads(self.cause)
        except json.JSONDecodeError:
            return self.cause
        return str(parsed.get("errorMessage", self.cause)) if isinstance(parsed, dict) else self.cause

    def state_output(self, state_name: str) -> dict[str, Any] | None:
        """What a state passed on, e.g. ClassifyImage's classification of an image the filter then stopped."""
        for event in reversed(self.history):
            details = event.get("stateExitedEventDetails")
            if details and details["name"] == state_name and details.get("output"):
                output = json.loads(details["output"])
                return output if isinstance(output, dict) else None
        return None

    def attempts(self, state_name: str) -> int:
        """How many times a Task state called its resource (1 + retries), from the history."""
        scheduled = 0
        current = None
        for event in self.history:
            details = event.get("stateEnteredEventDetails")
            if details:
                current = details["name"]
            if event["type"] in ("TaskScheduled", "LambdaFunctionScheduled") and current == state_name:
                scheduled += 1
        return scheduled


class WorkflowTarget(Protocol):
    """What run, batch and load need: LocalWorkflow on moto, or harness.deployed.DeployedStack on AWS."""

    bucket: str
    s3: Any
    sfn: Any
    state_machine_arn: str
    state_machine_arns: dict[str, str]

    def upload(self, data: bytes, key: str) -> str: ...

    def start(self, execution_input: dict[str, Any] | str) -> str: ...

    def wait(self, execution_arn: str, timeout_seconds: float = ...) -> ExecutionResult: ...

    def run(self, key: str, *, image_data: str = "") -> ExecutionResult: ...

    def ended(self, described: dict[str, Any]) -> None:
        """An execution reached a terminal state (describe_execution's answer): what AWS does then."""
        ...


def load_model(model_dir: Path | None = None) -> ServesModel:
    """The ONNX model under model/artifacts (or `model_dir`), served as the built-in algorithm answers."""
    from model.inference import ImageClassifierModel  # imported late: onnxruntime loads in ~0.2 s

    return ImageClassifierModel.load(model_dir)


class LocalWorkflow:
    """Context manager: set up moto, the hooks, the bucket and the state machine; run executions.

    The harness adapts the environment, never the handlers: it sets fake credentials and a region and
    answers Lambda and SageMaker calls through botocore hooks. The one change to the definition is
    `retry_delay_cap_seconds`: moto really sleeps between retries, so locally every Retry waits at
    most that long (attempt counts, backoff order and jitter stay as deployed); None keeps the
    deployed intervals.
    """

    def __init__(
        self,
        *,
        threshold: float | None = None,
        model: ServesModel | None = None,
        template_path: Path | None = None,
        log_dir: Path | None = None,
        parameter_overrides: dict[str, str] | None = None,
        retry_delay_cap_seconds: int | None = 1,
        task_timeout_cap_seconds: int | None = None,
    ) -> None:
        overrides = dict(parameter_overrides or {})
        if threshold is not None:
            overrides["ConfidenceThreshold"] = str(threshold)
        self.stack: Stack = read_stack(template_path, overrides)
        self.log_dir = log_dir
        self._model = model
        self._retry_delay_cap = retry_delay_cap_seconds
        self._task_timeout_cap = task_timeout_cap_seconds
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._saved_env: dict[str, str | None] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.endpoint: LocalEndpoint | None = None
        self.hooks: AwsHooks | None = None
        self.capture: DataCaptureWriter | None = None
        self.state_machine_arn = ""
        self.state_machine_arns: dict[str, str] = {}  # every state machine of the template, by logical id
        self.bucket = self.stack.bucket_name

    # -- set-up ------------------------------------------------------------------------------
    def __enter__(self) -> LocalWorkflow:
        local = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
        # Only the variables the harness changes are saved and put back: other threads may be reading.
        self._saved_env = {name: os.environ.get(name) for name in [*local, "AWS_PROFILE", "AWS_ENDPOINT_URL"]}
        os.environ.update(local)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
            os.environ.pop(name, None)
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        # moto logs every failed state at ERROR; the execution history already records it.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        self._mock.start()
        moto_engine.install()
        try:
            self._set_up()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _set_up(self) -> None:
        # Hooks go on the default session before any handler module creates its clients.
        boto3.setup_default_session(region_name=REGION)
        assert boto3.DEFAULT_SESSION is not None
        self.functions = {
            spec.function_name: LocalFunction(spec, self.log_dir) for spec in self.stack.functions.values()
        }
        endpoint_name = self.stack.parameters.get("EndpointName", "scones-image-classifier")
        self.endpoint = LocalEndpoint(endpoint_name, self._model or load_model())
        self.hooks = AwsHooks(self.functions, {endpoint_name: self.endpoint})
        self.hooks.register(boto3.DEFAULT_SESSION.events)

        self.s3 = boto3.client("s3", region_name=REGION)
        self.s3.create_bucket(Bucket=self.bucket)
        # As the template's bucket: versioned, so that S3 events carry a version-id.
        self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        # Data capture, as the deployed endpoint's DataCaptureConfig: s3://BUCKET/data_capture/...
        self.capture = self.endpoint.capture = DataCaptureWriter(self.s3, self.bucket, endpoint_name)
        self.sqs = boto3.client("sqs", region_name=REGION)
        for queue in self.stack.queues:
            self.sqs.create_queue(QueueName=queue)
        self.sns = boto3.client("sns", region_name=REGION)
        for topic in self.stack.topics:
            self.sns.create_topic(Name=topic)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        for table, properties in self.stack.tables.items():
            self.dynamodb.create_table(
                TableName=table,
                KeySchema=properties["KeySchema"],
                AttributeDefinitions=properties["AttributeDefinitions"],
                BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"),
            )
        self.eventbridge = boto3.client("events", region_name=REGION)
        for bus in self.stack.buses:
            self.eventbridge.create_event_bus(Name=bus)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.events = LocalEventBridge(self.stack, self.sns, self.sqs, self.sfn)
        main = self.stack.state_machine.logical_id
        for logical_id in self.stack.state_machines or {main: self.stack.state_machine}:
            machine = self.sfn.create_state_machine(
                name=logical_id,
                definition=self.definition(logical_id),
                roleArn=_LOCAL_ROLE_ARN,
                type="STANDARD",
            )
            self.state_machine_arns[logical_id] = machine["stateMachineArn"]
        self.state_machine_arn = self.state_machine_arns[main]

    def definition(self, logical_id: str | None = None) -> str:
        """The ASL with DefinitionSubstitutions applied, and the local caps on waiting applied."""
        spec = self.stack.state_machines.get(logical_id or "", self.stack.state_machine)
        text = spec.definition()
        if self._retry_delay_cap is None and self._task_timeout_cap is None:
            return text
        definition = json.loads(text)
        if self._retry_delay_cap is not None:
            for retrier in _find(definition, "Retry"):
                retrier["IntervalSeconds"] = min(
                    int(retrier.get("IntervalSeconds", 1)), self._retry_delay_cap
                )
                retrier["MaxDelaySeconds"] = min(
                    int(retrier.get("MaxDelaySeconds", 3600)), self._retry_delay_cap
                )
        if self._task_timeout_cap is not None:
            # Only for tests of the timeout path: a real image may need longer than a tight cap.
            for state in _find(definition, "States"):
                if "TimeoutSeconds" in state:
                    state["TimeoutSeconds"] = min(int(state["TimeoutSeconds"]), self._task_timeout_cap)
        return json.dumps(definition)

    def __exit__(self, *exc_info: object) -> None:
        # A handler whose state timed out may still be running: let it finish inside the mock, so
        # that nothing it does afterwards can reach real AWS.
        longest = max((spec.timeout_seconds for spec in self.stack.functions.values()), default=1)
        wait_for_running_invocations(timeout_seconds=longest)
        if self.capture is not None:
            try:
                self.capture.flush()  # while the bucket still exists in moto
            except Exception:  # a failed write must not leave moto running
                logging.getLogger(__name__).exception("data capture: the last records were not written")
        try:
            self._mock.stop()
        finally:
            boto3.DEFAULT_SESSION = None
            for name, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    # -- use ---------------------------------------------------------------------------------
    def upload(self, data: bytes, key: str) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return key

    def drop(self, data: bytes, key: str) -> list[ExecutionResult]:
        """Upload as a user would and let the template's EventBridge rules start what they start.

        Returns the executions started (none if no rule matches the key). Calling it twice with the
        same bytes and key delivers a second event for a new version, as S3 would.
        """
        put = self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        head = self.s3.head_object(Bucket=self.bucket, Key=key)
        event = object_created(
            self.bucket, key, int(head["ContentLength"]), put["ETag"].strip('"'), put.get("VersionId")
        )
        return self.redeliver(event)

    def redeliver(self, event: dict[str, Any]) -> list[ExecutionResult]:
        """Deliver an S3 event (again): EventBridge may deliver one event more than once."""
        deliveries = self.events.put_event(event)
        return [self.wait(d.execution_arn) for d in deliveries if d.execution_arn]

    def upload_file(self, path: Path, prefix: str = "images/") -> str:
        return self.upload(path.read_bytes(), f"{prefix}{path.name}")

    def start(self, execution_input: dict[str, Any] | str) -> str:
        text = execution_input if isinstance(execution_input, str) else json.dumps(execution_input)
        if len(text.encode()) > MAX_STATE_PAYLOAD_BYTES:
            raise ExecutionInputTooLargeError(
                f"execution input of {len(text.encode()):,} bytes exceeds {MAX_STATE_PAYLOAD_BYTES:,} bytes"
            )
        started = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=f"local-{uuid.uuid4().hex[:16]}", input=text
        )
        return str(started["executionArn"])

    def wait(self, execution_arn: str, timeout_seconds: float = 300.0) -> ExecutionResult:
        deadline = time.monotonic() + timeout_seconds
        # Each poll is a whole moto API call competing for the GIL with the execution's own thread:
        # start fast, then back off (10 % faster end to end than a fixed 5 ms, measured).
        delay = 0.002
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] in TERMINAL_STATUSES:
                break
            if time.monotonic() > deadline:
                self.sfn.stop_execution(executionArn=execution_arn, error="HarnessTimeout")
                described = self.sfn.describe_execution(executionArn=execution_arn)
                break
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
        self.ended(described)
        return read_execution(self.sfn, described)

    def ended(self, described: dict[str, Any]) -> None:
        # What EventBridge would receive from Step Functions: the template's rules act on it.
        self.events.put_event(execution_status_change(described))

    def run(self, key: str, *, image_data: str = "") -> ExecutionResult:
        """One execution with the original course's input shape."""
        return self.wait(self.start({"image_data": image_data, "s3_bucket": self.bucket, "s3_key": key}))

    def invoke_function(self, name: str, event: Any) -> tuple[Any, str | None]:
        """One function alone, like `sam local invoke`: (payload, function error or None)."""
        function = self.functions[self.stack.function_by_name(name).function_name]
        result = function.invoke(event)
        return result.json(), result.function_error


def read_execution(sfn: Any, described: dict[str, Any]) -> ExecutionResult:
    """An ExecutionResult from DescribeExecution's answer and the whole execution history."""
    execution_arn = described["executionArn"]
    history: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        history.extend(page["events"])
    stopped = described.get("stopDate") or datetime.now(described["startDate"].tzinfo)
    output = described.get("output")
    return ExecutionResult(
        execution_arn=execution_arn,
        status=described["status"],
        input=json.loads(described.get("input") or "{}"),
        output=json.loads(output) if output else None,
        error=described.get("error"),
        cause=described.get("cause"),
        seconds=(stopped - described["startDate"]).total_seconds(),
        states=_state_timings(history),
        history=history,
    )


def _find(node: Any, field_name: str) -> Iterator[dict[str, Any]]:
    """Every entry of every `Retry` list, or every state of every `States` map, nested ones included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == field_name and isinstance(value, list):
                yield from (item for item in value if isinstance(item, dict))
            elif key == field_name and isinstance(value, dict):
                yield from (item for item in value.values() if isinstance(item, dict))
                yield from _find(value, field_name)
            else:
                yield from _find(value, field_name)
    elif isinstance(node, list):
        for item in node:
            yield from _find(item, field_name)


def _state_timings(history: list[dict[str, Any]]) -> list[StateTiming]:
    timings: list[StateTiming] = []
    entered: dict[str, datetime] = {}
    for event in history:
        if "stateEnteredEventDetails" in event:
            entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
        elif "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"]["name"]
            if name in entered:
                timings.append(StateTiming(name, (event["timestamp"] - entered.pop(name)).total_seconds()))
    # A state that failed has no exit event: time it to the execution's last event.
    if history:
        for name, start in entered.items():
            timings.append(StateTiming(name, (history[-1]["timestamp"] - start).total_seconds()))
    return timings
