"""The template's EventBridge rules, applied locally: pattern matching, input transformers, targets.

moto's Step Functions emits no events, so the harness builds the "Step Functions Execution Status
Change" event AWS would send when an execution ends and delivers it through every rule of
template.yaml that matches, to SNS topics and SQS queues in moto.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from harness.local.template import ACCOUNT_ID, REGION, Stack


def matches(pattern: Any, event: Any) -> bool:
    """EventBridge pattern semantics for the forms the project uses: exact values, prefix/suffix,
    anything-but, exists, nested objects; a list in the event matches if any element does."""
    if isinstance(pattern, dict):
        if not isinstance(event, dict):
            return False
        return all(_field_matches(rule, event.get(key, _MISSING)) for key, rule in pattern.items())
    return False


_MISSING = object()


def _field_matches(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        return value is not _MISSING and matches(rule, value)
    candidates = value if isinstance(value, list) else [value]
    return any(_value_matches(option, candidate) for option in rule for candidate in candidates)


def _value_matches(option: Any, value: Any) -> bool:
    if isinstance(option, dict):
        ((operator, argument),) = option.items()
        if operator == "exists":
            return (value is not _MISSING) == bool(argument)
        if value is _MISSING:
            return False
        if operator == "prefix":
            return isinstance(value, str) and value.startswith(str(argument))
        if operator == "suffix":
            return isinstance(value, str) and value.endswith(str(argument))
        if operator == "wildcard":
            # "*" matches any run of characters, "/" included; nothing else is special.
            pattern = "".join(".*" if c == "*" else re.escape(c) for c in str(argument))
            return isinstance(value, str) and re.fullmatch(pattern, value, flags=re.DOTALL) is not None
        if operator == "equals-ignore-case":
            return isinstance(value, str) and value.lower() == str(argument).lower()
        if operator == "anything-but":
            excluded = argument if isinstance(argument, list) else [argument]
            return value not in excluded
        raise ValueError(f"event pattern operator {operator!r} is not supported by the local harness")
    return value is not _MISSING and option == value


def _json_path(document: Any, path: str) -> Any:
    """The value at a dot-notation path, or _MISSING when the event has no such field."""
    node = document
    for part in [p for p in path.removeprefix("$").split(".") if p]:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def transform(event: dict[str, Any], paths: dict[str, str], template: str) -> str:
    """InputTransformer: <name> inside a JSON string is inserted as text, elsewhere as a JSON value.

    A path the event does not have leaves its placeholder empty, as EventBridge does ("that variable
    isn't created and won't appear in the output", EventBridge user guide, Common issues with
    transforming input): inside a string nothing is inserted; standing as a value it becomes "" (what
    AWS delivered for `{"command": <command>}` with a missing path in LocalStack's AWS-recorded
    snapshot test_put_events_with_input_transformer_input_template_json, 2024-06-11), never null.
    """
    values = {name: _json_path(event, path) for name, path in paths.items()}
    out: list[str] = []
    in_string = False
    position = 0
    for match in re.finditer(r'<(\w+)>|"|\\.', template):
        out.append(template[position : match.start()])
        token = match.group(0)
        if token == '"':
            in_string = not in_string
            out.append(token)
        elif token.startswith("\\"):
            out.append(token)
        elif match.group(1) in values:
            out.append(_substitute(values[match.group(1)], in_string))
        else:
            out.append(token)
        position = match.end()
    out.append(template[position:])
    return "".join(out)


def _substitute(value: Any, in_string: bool) -> str:
    if value is _MISSING:
        return "" if in_string else '""'
    if not in_string:
        return json.dumps(value)
    return json.dumps(value if isinstance(value, str) else str(value))[1:-1]


@dataclass
class Delivery:
    rule: str
    target_arn: str
    message: str
    execution_arn: str | None = None  # when the target is a state machine


class LocalEventBridge:
    def __init__(self, stack: Stack, sns: Any, sqs: Any, sfn: Any) -> None:
        self.sns = sns
        self.sqs = sqs
        self.sfn = sfn
        self.rules = {
            lid: stack.resolver.resolve(res.get("Properties", {}))
            for lid, res in stack.resources.items()
            if res.get("Type") == "AWS::Events::Rule"
        }
        self.deliveries: list[Delivery] = []

    def put_event(self, event: dict[str, Any]) -> list[Delivery]:
        delivered = []
        for name, rule in self.rules.items():
            if rule.get("State", "ENABLED") != "ENABLED" or not matches(rule.get("EventPattern", {}), event):
                continue
            for target in rule.get("Targets", []):
                transformer = target.get("InputTransformer")
                message = (
                    transform(event, transformer.get("InputPathsMap", {}), transformer["InputTemplate"])
                    if transformer
                    else json.dumps(event)
                )
                arn = str(target["Arn"])
                if arn.startswith("arn:aws:sns:"):
                    self.sns.publish(TopicArn=arn, Message=message)
                elif arn.startswith("arn:aws:sqs:"):
                    queue = arn.rsplit(":", 1)[1]
                    self.sqs.send_message(
                        QueueUrl=self.sqs.get_queue_url(QueueName=queue)["QueueUrl"], MessageBody=message
                    )
                elif arn.startswith("arn:aws:states:"):
                    started = self.sfn.start_execution(
                        stateMachineArn=arn, name=f"event-{uuid.uuid4().hex[:20]}", input=message
                    )
                    delivered.append(Delivery(name, arn, message, started["executionArn"]))
                    continue
                else:
                    continue  # a target the harness does not run
                delivered.append(Delivery(name, arn, message))
        self.deliveries.extend(delivered)
        return delivered


def encode_event_key(key: str) -> str:
    """An object key as S3 writes it into its events: URL-encoded, a space as "+", "/" kept
    ("red flower.jpg" becomes "red+flower.jpg", S3 user guide, event message structure)."""
    return quote_plus(key, safe="/")


def object_created(bucket: str, key: str, size: int, etag: str, version_id: str | None) -> dict[str, Any]:
    """The event S3 sends to EventBridge for a new object (the shape of events/s3_object_created.json):
    the key URL-encoded; no version-id when the bucket is not versioned."""
    obj: dict[str, Any] = {
        "key": encode_event_key(key),
        "size": size,
        "etag": etag,
        "sequencer": uuid.uuid4().hex[:18].upper(),
    }
    if version_id:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT_ID,
        "time": datetime.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT_ID,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


def execution_status_change(described: dict[str, Any]) -> dict[str, Any]:
    """The event Step Functions sends to EventBridge when an execution changes status."""

    def millis(value: datetime | None) -> int | None:
        return int(value.timestamp() * 1000) if value else None

    return {
        "version": "0",
        "id": described["executionArn"].rsplit(":", 1)[1],
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT_ID,
        "time": (described.get("stopDate") or described["startDate"]).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [described["executionArn"]],
        "detail": {
            "executionArn": described["executionArn"],
            "stateMachineArn": described["stateMachineArn"],
            "name": described.get("name"),
            "status": described["status"],
            "startDate": millis(described.get("startDate")),
            "stopDate": millis(described.get("stopDate")),
            "input": described.get("input"),
            "output": described.get("output"),
            "error": described.get("error"),
            "cause": described.get("cause"),
        },
    }
