"""Test helpers: where things are, a stub endpoint model, image builders and template lookups."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the project: the real data, absent on machines without it (tests skip).
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def packages_imported_by(statement: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running `statement` in the project root:
    what an import costs a command or a container, unaffected by what the test run imported before."""
    code = f"{statement}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True
    )
    return set(result.stdout.split())


class StubModel:
    """Answers every request with fixed probabilities; records what it was sent."""

    def __init__(self, probabilities: list[float] | None = None) -> None:
        self.probabilities = probabilities or [0.97, 0.03]
        self.requests: list[tuple[str, int]] = []

    def invoke(self, body: bytes, content_type: str) -> bytes:
        self.requests.append((content_type, len(body)))
        return json.dumps(self.probabilities).encode()

    def predict(self, body: bytes, content_type: str) -> list[float]:
        """What the endpoint's handler calls (predict_fn); subclasses answer through invoke."""
        answer: list[float] = json.loads(self.invoke(body, content_type))
        return answer


def png_bytes(size: tuple[int, int] = (32, 32), mode: str = "RGB", color: object = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")  # type: ignore[arg-type]
    return buffer.getvalue()


def fake_aws_environment(monkeypatch: Any, tmp_path: Path, region: str, *unset: str) -> None:
    """Fake credentials and a region, no AWS config files or metadata service: nothing reaches AWS.

    `unset` names further variables the test must not inherit (e.g. SAGEMAKER_ROLE_ARN)."""
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", *unset):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    # Without credentials botocore would ask the instance metadata service next (a network call).
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# -- the SageMaker Python SDK under moto ------------------------------------------------------------------


def moto_describe_fix(parsed: dict[str, Any], model: Any, **_: Any) -> None:
    """botocore after-call hook: make moto 5.2.5's SageMaker descriptions parse into the SDK's shapes.

    moto answers "VpcConfig": {} (DescribeModel) and "DataCaptureConfig": {} (DescribeEndpointConfig,
    DescribeEndpoint) where AWS leaves them out, and its DescribeEndpoint of a capturing endpoint lacks
    CaptureStatus and CurrentSamplingPercentage; sagemaker-core's pydantic shapes require those members,
    so the `get` after each `create` would fail. Tests only: AWS answers in full.
    """
    for key in ("VpcConfig", "DataCaptureConfig"):
        if parsed.get(key) == {}:
            del parsed[key]
    capture = parsed.get("DataCaptureConfig")
    if model.name == "DescribeEndpoint" and capture:
        capture.setdefault("CaptureStatus", "Started" if capture.get("EnableCapture") else "Stopped")
        # moto keeps no sampling percentage for the endpoint; deploy always asks for 100.
        capture.setdefault("CurrentSamplingPercentage", 100)


# -- listening to what the local workflow sends downstream (moto SQS) -------------------------------------
def _queue(workflow: Any, name: str) -> tuple[str, str]:
    url = workflow.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = workflow.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def subscribe_to_results(workflow: Any) -> str:
    """A queue that receives every event on the results bus, standing in for a downstream system."""
    url, arn = _queue(workflow, "downstream")
    bus = workflow.stack.buses[0]
    workflow.eventbridge.put_rule(
        Name="all-results",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["scones.image-classification"]}),
    )
    workflow.eventbridge.put_targets(Rule="all-results", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return url


def subscribe_queue(workflow: Any) -> str:
    """A queue subscribed to the notification topic, standing in for the operator's inbox."""
    url, arn = _queue(workflow, "inbox")
    topic = workflow.sns.create_topic(Name="NotificationTopic")["TopicArn"]
    workflow.sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    return url


def received(workflow: Any, url: str) -> list[dict[str, Any]]:
    """Every message waiting in the queue (taken off it), as JSON."""
    bodies: list[dict[str, Any]] = []
    while messages := workflow.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies.extend(json.loads(message["Body"]) for message in messages)
        for message in messages:
            workflow.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def props_of(resources: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """A template resource's Properties, by logical id."""
    return resources[logical_id]["Properties"]
