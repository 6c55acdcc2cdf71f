"""Faults under load, nothing lost: a few hundred executions with catalogued faults armed for a fifth of
the images, then every image accounted for from the workflow's own records, the topic and the queue."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from harness.local.workflow import LocalWorkflow
from harness.ops.execution import TERMINAL_STATUSES
from harness.ops.load import read_results
from harness.reliability.under_load import run_accounted_load
from tests.helpers import StubModel, png_bytes, received, subscribe_queue

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COUNT = 200


class UnsureOf(StubModel):
    """Confident about every image but one, whose answer is under the 0.8 threshold."""

    def __init__(self, unsure: bytes) -> None:
        super().__init__()
        self.unsure = unsure

    def predict(self, body: bytes, content_type: str) -> list[float]:
        return [0.55, 0.45] if body == self.unsure else [0.97, 0.03]


def test_nothing_is_lost_under_load_with_faults(tmp_path: Path, bicycle_png: bytes) -> None:
    # Given 200 images, every fifth one the model is unsure of, and an operator subscribed to the topic
    unsure = png_bytes()
    with LocalWorkflow(model=UnsureOf(unsure), log_dir=tmp_path) as workflow:
        keys = [
            workflow.upload(unsure if i % 5 == 0 else bicycle_png, f"load/{i:04d}.png") for i in range(COUNT)
        ]
        inbox = subscribe_queue(workflow)
        # When they run under load with a catalogued fault armed for about a fifth of them (seed 1)
        report, accounting = run_accounted_load(
            workflow, keys, share=0.2, seed=1, rate=8.0, count=COUNT, describe_per_second=8.0
        )
        # Then, from the state machine's own list, every started image has exactly one terminal record,
        # with a reason: an output, or an error and a cause
        pages = workflow.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=workflow.state_machine_arn
        )
        listed = [execution for page in pages for execution in page["executions"]]
        assert len(listed) == report.started == COUNT
        results = read_results(workflow, [e["executionArn"] for e in listed])
        assert all(r.status in TERMINAL_STATUSES for r in results)
        assert sorted(r.input["s3_key"] for r in results) == sorted(keys)
        failures = {r.execution_arn: r for r in results if r.status != "SUCCEEDED"}
        assert all(r.error and r.cause for r in failures.values())
        assert all(r.output for r in results if r.status == "SUCCEEDED")
        # every failure was announced exactly once on the topic, and nothing else was
        announced = Counter(n["executionArn"] for n in received(workflow, inbox))
        assert announced == Counter(dict.fromkeys(failures, 1))
        # every low-confidence image waits in the review queue exactly once
        review = received(workflow, workflow.queue_url("ReviewQueue"))
        unsure_ones = {arn for arn, r in failures.items() if r.error == "THRESHOLD_CONFIDENCE_NOT_MET"}
        assert Counter(m["execution_arn"] for m in review) == Counter(dict.fromkeys(unsure_ones, 1))
        assert {m["s3_key"] for m in review} <= set(keys[::5])
    # and the run's own accounting agrees: faults injected and retried, ended as catalogued, none lost
    assert accounting.unaccounted == [] and accounting.not_as_catalogued == []
    assert accounting.started == accounting.finished == COUNT
    assert accounting.announced == len(failures) and accounting.in_review == len(unsure_ones)
    assert 20 <= sum(accounting.faults.values()) <= 60
    assert accounting.retried_executions > 0 and accounting.total_retries >= accounting.retried_executions
    assert len(unsure_ones) > 20 and len(failures) > len(unsure_ones)  # some faults end in failures
