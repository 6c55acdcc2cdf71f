"""summarize_batch: count a batch's outcomes from the ResultWriter manifest and result files in S3."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from scones_common.exceptions import BatchResultsUnreadableError
from scones_common.models import BatchSummary, ImageOutcome, SummarizeBatchRequest
from scones_common.ports import ResultStore

EXAMPLES_PER_ERROR = 5
# A child execution that failed in Step Functions itself (the processor's own states catch every step's
# error) is named by its Error; this stands in when a FAILED entry carries none.
UNNAMED_CHILD_FAILURE = "ChildExecutionFailed"


def summarize_batch(request: SummarizeBatchRequest, results: ResultStore) -> BatchSummary:
    details = request.result_writer_details
    manifest = _json(results.read(details.bucket, details.key), details.key)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("ResultFiles"), dict):
        raise BatchResultsUnreadableError(
            f"s3://{details.bucket}/{details.key} is not a ResultWriter manifest"
        )
    bucket = str(manifest.get("DestinationBucket") or details.bucket)

    outcomes = [
        outcome
        for status, files in sorted(manifest["ResultFiles"].items())
        for entry in _entries(bucket, files, results)
        for outcome in [_outcome(status, entry)]
    ]
    statuses = Counter(outcome.status for outcome in outcomes)
    failures: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for outcome in outcomes:
        if outcome.status == "FAILED":
            error = outcome.error or UNNAMED_CHILD_FAILURE
            failures[error] += 1
            if len(examples.setdefault(error, [])) < EXAMPLES_PER_ERROR:
                examples[error].append(outcome.s3_key)
    return BatchSummary(
        map_run_arn=request.map_run_arn,
        manifest=f"s3://{details.bucket}/{details.key}",
        total=len(outcomes),
        classified=statuses["CLASSIFIED"],
        low_confidence=statuses["LOW_CONFIDENCE"],
        failed=statuses["FAILED"],
        skipped=statuses["SKIPPED"],
        labels=_per_label(outcomes, "CLASSIFIED"),
        low_confidence_labels=_per_label(outcomes, "LOW_CONFIDENCE"),
        failures=dict(sorted(failures.items())),
        failure_examples=dict(sorted(examples.items())),
    )


def _entries(bucket: str, files: Any, results: ResultStore) -> Iterator[dict[str, Any]]:
    for file in files if isinstance(files, list) else []:
        key = str(file.get("Key", "")) if isinstance(file, dict) else ""
        if not key:
            raise BatchResultsUnreadableError(f"manifest lists a result file without a Key: {file!r}")
        entries = _json(results.read(bucket, key), key)
        if not isinstance(entries, list):
            raise BatchResultsUnreadableError(f"s3://{bucket}/{key} is not a JSON array of executions")
        yield from (entry for entry in entries if isinstance(entry, dict))


def _outcome(file_status: str, entry: dict[str, Any]) -> ImageOutcome:
    """A SUCCEEDED entry's Output is the child's outcome; any other entry failed in Step Functions."""
    status = str(entry.get("Status", file_status))
    if status == "SUCCEEDED":
        try:
            return ImageOutcome.model_validate(_json(str(entry.get("Output") or ""), "an execution's Output"))
        except ValidationError as exc:
            raise BatchResultsUnreadableError(
                f"a child execution's output is not an outcome: {exc}"
            ) from None
    child_input = _json(str(entry.get("Input") or "{}"), "an execution's Input")
    key = child_input.get("s3_key") if isinstance(child_input, dict) else None
    error = str(entry.get("Error") or (status if status != "FAILED" else UNNAMED_CHILD_FAILURE))
    return ImageOutcome(s3_key=str(key or entry.get("Name") or "?"), status="FAILED", error=error)


def _per_label(outcomes: list[ImageOutcome], status: str) -> dict[str, int]:
    return dict(sorted(Counter(o.label or "?" for o in outcomes if o.status == status).items()))


def _json(raw: bytes | str, where: str) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BatchResultsUnreadableError(f"{where} is not JSON: {exc}") from None
