"""Faults under load: the catalogue's endpoint and Lambda faults, drawn for a share of the images of a
`scones load` run with a seeded RNG and armed for those images alone (executions interleave)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from harness.local.workflow import LocalWorkflow
from harness.ops.accounting import LOW_CONFIDENCE, Accounting, Expectation, account
from harness.ops.load import LoadReport, read_results, run_load
from harness.reliability.cases import FAULT_CASES, FaultCase

# The endpoint's 60 s invocation timeout, shortened as the catalogue's runner does: the slow-model
# case then costs 0.2 s of the one handler that runs at a time, not a minute.
INVOCATION_TIMEOUT_SECONDS = 0.2


def plan_faults(
    keys: Sequence[str], share: float, seed: int, cases: Sequence[FaultCase] = FAULT_CASES
) -> dict[str, FaultCase]:
    """For each key, with probability `share`, one fault case drawn from the catalogue; the same
    `seed` gives the same plan."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the share of images with a fault must be within [0, 1], not {share}")
    rng = random.Random(seed)
    plan: dict[str, FaultCase] = {}
    for key in keys:
        # Both draws for every key, so that a key's fault depends on the seed and its position only.
        hit, case = rng.random() < share, rng.choice(cases)
        if hit:
            plan[key] = case
    return plan


def arm_faults(workflow: LocalWorkflow, plan: Mapping[str, FaultCase]) -> None:
    """Arm the endpoint and the Lambda hook with each planned fault, for its image's calls only."""
    assert workflow.endpoint is not None and workflow.hooks is not None
    workflow.endpoint.invocation_timeout_seconds = INVOCATION_TIMEOUT_SECONDS
    for key, case in plan.items():
        if case.endpoint_fault is not None:
            workflow.endpoint.inject(case.endpoint_fault, times=case.times, key=key)
        if case.lambda_fault is not None:
            function, code, status = case.lambda_fault
            workflow.hooks.inject_lambda_fault(function, code, status, times=case.times, key=key)


def expectation(case: FaultCase) -> Expectation:
    """How an image with this fault must end. A fault the workflow retries past leaves the image to the
    model, which may be unsure of it: then it ends for low confidence, as without the fault."""
    outcomes = {case.outcome} | ({LOW_CONFIDENCE} if case.outcome == "SUCCEEDED" else set())
    return Expectation(case.name, frozenset(outcomes), case.state, case.attempts)


def expectations(executions: Mapping[str, str], plan: Mapping[str, FaultCase]) -> dict[str, Expectation]:
    """By execution ARN (`executions`: ARN -> key, as `run_load` started them), each faulted one's."""
    return {arn: expectation(plan[key]) for arn, key in executions.items() if key in plan}


def run_accounted_load(
    workflow: LocalWorkflow, keys: Sequence[str], *, share: float = 0.0, seed: int = 0, **load: Any
) -> tuple[LoadReport, Accounting]:
    """`run_load` on the local workflow with the planned faults armed, then every execution accounted for:
    its terminal record, the notification topic (read from a queue subscribed before the first start)
    and the review queue. `load`: run_load's keyword arguments."""
    inbox = workflow.subscribe_to_topic()
    plan = plan_faults(keys, share, seed)
    arm_faults(workflow, plan)
    report = run_load(workflow, keys, **load)
    started = list(report.executions)
    accounting = account(
        started,
        read_results(workflow, started),
        workflow.messages(inbox),
        workflow.messages(workflow.queue_url("ReviewQueue"), delete=False),
        expectations(report.executions, plan),
    )
    return report, accounting
