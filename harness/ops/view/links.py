"""Which execution sent an image to the endpoint, so that a report listing captured images can link each
to its execution: the image's bytes (the SHA-256 of what InvokeEndpoint carried, which is the base64
`image_data` a state passed, decoded) and the time of the inference (within the execution's run)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from harness.ops.view.record import ExecutionRecord, fetch

# With --stack, at most this many histories are read per image whose time alone names no one execution.
MAX_HISTORIES_PER_IMAGE = 10


@dataclass(frozen=True)
class SentImage:
    """One captured inference to find the execution of."""

    key: str  # the capture record's event id
    data: bytes  # what the endpoint received
    time: datetime  # when it answered (UTC)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def image_digests(record: ExecutionRecord) -> set[str]:
    """The SHA-256 of every image a state of the execution passed on (base64 `image_data`)."""
    found: set[str] = set()
    for event in record.history:
        for details in (event.get("stateEnteredEventDetails"), event.get("stateExitedEventDetails")):
            for text in ((details or {}).get("input"), (details or {}).get("output")):
                try:
                    value = json.loads(text) if text else None
                except json.JSONDecodeError:
                    continue
                data = value.get("image_data") if isinstance(value, dict) else None
                if isinstance(data, str) and data:
                    try:
                        found.add(hashlib.sha256(base64.b64decode(data, validate=True)).hexdigest())
                    except (binascii.Error, ValueError):
                        continue
    return found


def _during(record: ExecutionRecord, when: datetime) -> bool:
    start, stop = record.described.get("startDate"), record.described.get("stopDate")
    return isinstance(start, datetime) and start <= when and (not isinstance(stop, datetime) or when <= stop)


def match(records: Iterable[ExecutionRecord], images: Iterable[SentImage]) -> dict[str, ExecutionRecord]:
    """Each image's execution among `records`: the one that passed its bytes, and, when several did (the
    same image sent twice), the one running when the endpoint answered."""
    digests = [(record, image_digests(record)) for record in records]
    found: dict[str, ExecutionRecord] = {}
    for image in images:
        candidates = [record for record, sent in digests if image.digest in sent]
        running = [record for record in candidates if _during(record, image.time)]
        if len(running) == 1 or (len(candidates) == 1 and not running):
            found[image.key] = (running or candidates)[0]
    return found


def match_deployed(sfn: Any, state_machine_arn: str, images: list[SentImage]) -> dict[str, str]:
    """Each image's execution ARN in a deployed state machine: the only execution running when the
    endpoint answered, or, among several, the one whose history passed the image's bytes (reading at most
    MAX_HISTORIES_PER_IMAGE histories each). An image found in no execution gets no entry."""
    if not images:
        return {}
    earliest = min(image.time for image in images) - timedelta(minutes=15)
    executions: list[dict[str, Any]] = []
    # ListExecutions lists the newest first: stop at the first page that reaches back past the images.
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        executions.extend(page["executions"])
        if page["executions"] and page["executions"][-1]["startDate"] < earliest:
            break
    found: dict[str, str] = {}
    for image in images:
        running = [
            e
            for e in executions
            if e["startDate"] <= image.time and ("stopDate" not in e or image.time <= e["stopDate"])
        ]
        if len(running) == 1:
            found[image.key] = str(running[0]["executionArn"])
            continue
        for execution in running[:MAX_HISTORIES_PER_IMAGE]:
            record = fetch(sfn, str(execution["executionArn"]), definition="{}")
            if image.digest in image_digests(record):
                found[image.key] = record.arn
                break
    return found


def console_url(execution_arn: str) -> str:
    """The Step Functions console's page of an execution."""
    region = execution_arn.split(":")[3]
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
