"""The whole workflow on this machine: moto's S3 and Step Functions, the real ASL, the real handlers."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers
from moto import mock_aws

from harness.local.aws_hooks import AwsHooks
from harness.local.capture import DataCaptureWriter
from harness.local.endpoint import LocalEndpoint, ServesModel
from harness.local.eventbridge import LocalEventBridge, execution_status_change, object_created
from harness.local.lambda_runtime import LocalFunction, wait_for_running_invocations
from harness.local.process import local_process
from harness.local.template import ACCOUNT_ID, REGION, Stack, read_stack
from harness.local.tracing import CapturingEmitter, local_xray, tracing_environment
from harness.ops.execution import (
    TERMINAL_STATUSES,
    ExecutionResult,
    StartsExecutions,
    read_execution,
)
from harness.ops.view.trace import assemble

_LOCAL_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/scones-local-state-machine"


def load_model(model_dir: Path | None = None) -> ServesModel:
    """The ONNX model under model/artifacts (or `model_dir`), served as the built-in algorithm answers."""
    from model.inference import ImageClassifierModel  # imported late: onnxruntime loads in ~0.2 s

    return ImageClassifierModel.load(model_dir)


class LocalWorkflow(StartsExecutions):
    """Context manager: set up moto, the hooks, the bucket and the state machine; run executions.

    The harness adapts the environment, never the handlers: it sets fake credentials and a region and
    answers Lambda and SageMaker calls through botocore hooks. The one change to the definition is
    `retry_delay_cap_seconds`: moto really sleeps between retries, so locally every Retry waits at
    most that long (attempt counts, backoff order and jitter stay as deployed); None keeps the
    deployed intervals. Timeouts are as deployed: a function that runs past its own Timeout fails with
    `Sandbox.Timedout`, as on AWS (harness.local.lambda_runtime); `function_timeouts` shortens a
    function's Timeout (by logical id or folder name) for tests of that path, and every Task's
    TimeoutSeconds stays as written, longer than its function's.
    """

    execution_name_prefix = "local"

    def __init__(
        self,
        *,
        threshold: float | None = None,
        model: ServesModel | None = None,
        template_path: Path | None = None,
        log_dir: Path | None = None,
        parameter_overrides: dict[str, str] | None = None,
        retry_delay_cap_seconds: int | None = 1,
        function_timeouts: dict[str, int] | None = None,
        tracing: bool = False,
        versioned_bucket: bool = True,
    ) -> None:
        overrides = dict(parameter_overrides or {})
        if threshold is not None:
            overrides["ConfidenceThreshold"] = str(threshold)
        self.stack: Stack = read_stack(template_path, overrides)
        for name, seconds in (function_timeouts or {}).items():
            self.stack.function_by_name(name).timeout_seconds = seconds
        self.log_dir = log_dir
        self._model = model
        self._retry_delay_cap = retry_delay_cap_seconds
        # With `tracing`, the functions run with X-Ray active, as deployed (Tracing: Active), and what they
        # would send to the daemon is kept in `traces` (harness.local.tracing).
        self._tracing = tracing
        self._xray: AbstractContextManager[CapturingEmitter] | None = None
        self.traces: CapturingEmitter | None = None
        # False: a bucket named by ExistingBucketName may be unversioned; its events carry no version-id.
        self._versioned_bucket = versioned_bucket
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._saved_env: dict[str, str | None] = {}
        self._saved_session: boto3.Session | None = None
        self._process: AbstractContextManager[None] | None = None
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
        self._process = local_process(moto=True)
        self._process.__enter__()
        self._saved_session = boto3.DEFAULT_SESSION
        self._mock.start()
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
        if self._tracing:
            self._xray = local_xray()
            self.traces = self._xray.__enter__()
        self.functions = {
            spec.function_name: LocalFunction(
                spec, self.log_dir, tracing_environment(spec.code_dir) if self._tracing else None
            )
            for spec in self.stack.functions.values()
        }
        endpoint_name = self.stack.parameters.get("EndpointName", "scones-image-classifier")
        self.endpoint = LocalEndpoint(endpoint_name, self._model or load_model())
        self.hooks = AwsHooks(self.functions, {endpoint_name: self.endpoint})
        self.hooks.traces = self.traces
        self.hooks.register(boto3.DEFAULT_SESSION.events)

        self.s3 = boto3.client("s3", region_name=REGION)
        self.s3.create_bucket(Bucket=self.bucket)
        if self._versioned_bucket:
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
        for logical_id, spec in (self.stack.state_machines or {main: self.stack.state_machine}).items():
            machine = self.sfn.create_state_machine(
                name=logical_id,
                definition=self.definition(logical_id),
                roleArn=_LOCAL_ROLE_ARN,
                type="STANDARD",
                # As the template's `Tracing`: each execution is then one X-Ray trace (moto_engine).
                tracingConfiguration={"enabled": spec.traced},
            )
            self.state_machine_arns[logical_id] = machine["stateMachineArn"]
        self.state_machine_arn = self.state_machine_arns[main]

    def definition(self, logical_id: str | None = None) -> str:
        """The ASL with DefinitionSubstitutions applied, and the local cap on retry delays applied."""
        spec = self.stack.state_machines.get(logical_id or "", self.stack.state_machine)
        text = spec.definition()
        if self._retry_delay_cap is None:
            return text
        definition = json.loads(text)
        for retrier in _find(definition, "Retry"):
            retrier["IntervalSeconds"] = min(int(retrier.get("IntervalSeconds", 1)), self._retry_delay_cap)
            retrier["MaxDelaySeconds"] = min(int(retrier.get("MaxDelaySeconds", 3600)), self._retry_delay_cap)
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
            if self._xray is not None:
                self._xray.__exit__(None, None, None)
                self._xray = None
            boto3.DEFAULT_SESSION = self._saved_session
            if self._process is not None:
                self._process.__exit__(None, None, None)
                self._process = None
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

    @contextmanager
    def bucket_sends_events(self) -> Iterator[None]:
        """While open, every PutObject into the bucket, by any client of any boto3 session created
        meanwhile (a DeployedStack's too), sends its Object Created event through the template's rules,
        as the deployed bucket (EventBridgeEnabled) does. Clients made before it opened (self.s3) send
        nothing: `upload` stays a quiet upload and `drop` delivers its own event."""

        def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["scones_put"] = (params.get("Bucket"), params.get("Key"))

        def deliver(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            bucket, key = context.get("scones_put") or (None, None)
            if bucket != self.bucket or not key or "ETag" not in parsed:
                return
            size = int(self.s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
            self.events.put_event(
                object_created(bucket, key, size, parsed["ETag"].strip('"'), parsed.get("VersionId"))
            )

        handlers: list[tuple[str, Any]] = [
            ("before-parameter-build.s3.PutObject", remember),
            ("after-call.s3.PutObject", deliver),
        ]
        botocore.handlers.BUILTIN_HANDLERS.extend(handlers)
        try:
            yield
        finally:
            for handler in handlers:
                botocore.handlers.BUILTIN_HANDLERS.remove(handler)

    def upload_file(self, path: Path, prefix: str = "images/") -> str:
        return self.upload(path.read_bytes(), f"{prefix}{path.name}")

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

    def subscribe_to_topic(self, topic: str = "NotificationTopic", queue: str = "scones-inbox") -> str:
        """A queue subscribed to one of the template's topics (raw delivery: each message is what the
        rule published), standing in for the operator's inbox; returns its URL."""
        url = self.sqs.create_queue(QueueName=queue)["QueueUrl"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        arn = attributes["Attributes"]["QueueArn"]
        topic_arn = self.sns.create_topic(Name=topic)["TopicArn"]  # the template's topic, by its name
        self.sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
        )
        return str(url)

    def queue_url(self, queue: str) -> str:
        """A queue of the template (e.g. ReviewQueue), by logical id."""
        return str(self.sqs.get_queue_url(QueueName=queue)["QueueUrl"])

    def messages(self, queue_url: str, *, delete: bool = True) -> list[dict[str, Any]]:
        """Every message waiting in the queue, as JSON; taken off it, or with `delete=False` left
        waiting in it (visible again once all are read)."""
        bodies: list[dict[str, Any]] = []
        handles: list[str] = []
        while batch := self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
            bodies.extend(json.loads(message["Body"]) for message in batch)
            handles.extend(message["ReceiptHandle"] for message in batch)
        for handle in handles:
            if delete:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=handle)
            else:
                self.sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0
                )
        return bodies

    def segments(self, trace_id: str) -> list[dict[str, Any]]:
        """The trace's segments as X-Ray would put them together (none without `tracing`)."""
        return assemble(self.traces.trace(trace_id)) if self.traces is not None and trace_id else []

    def invoke_function(self, name: str, event: Any) -> tuple[Any, str | None]:
        """One function alone, like `sam local invoke`: (payload, function error or None)."""
        function = self.functions[self.stack.function_by_name(name).function_name]
        result = function.invoke(event)
        return result.json(), result.function_error


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
