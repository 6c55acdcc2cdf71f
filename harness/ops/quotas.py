"""The Step Functions quotas that `scones load` stays under (Standard workflows, per account and region).

Token buckets: a burst may spend the bucket, a sustained rate gets the refill. Figures from the Step
Functions developer guide, "Step Functions service quotas" (API action throttling, state throttling,
other quotas); AWS may raise them per account, and new accounts start with reduced StateTransition
quotas, so an account's own figures (Service Quotas console) can be passed instead.
"""

from __future__ import annotations

from dataclasses import dataclass

# The regions with the larger quotas; every other region has the second column.
LARGE_REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1"})


@dataclass(frozen=True)
class TokenBucket:
    bucket: int
    refill_per_second: float


# name -> (US East (N. Virginia), US West (Oregon), Europe (Ireland); all other regions)
STANDARD_QUOTAS: dict[str, tuple[TokenBucket, TokenBucket]] = {
    "StartExecution": (TokenBucket(1300, 300), TokenBucket(800, 150)),
    "StateTransition": (TokenBucket(5000, 1500), TokenBucket(800, 500)),
    "DescribeExecution": (TokenBucket(300, 15), TokenBucket(250, 10)),
    "GetExecutionHistory": (TokenBucket(400, 20), TokenBucket(400, 20)),
    "ListExecutions": (TokenBucket(200, 5), TokenBucket(100, 2)),
    "StopExecution": (TokenBucket(1000, 200), TokenBucket(500, 25)),
}

# State transitions of one image execution (statemachine/image_classification.asl.json): 6 states when
# classified, 7 when kept for review; 8 leaves room for one retried Task.
TRANSITIONS_PER_EXECUTION = 8
# The share of a polling quota the load may use: the console, `scones run` and the Distributed Map's
# own DescribeExecution calls draw on the same bucket.
POLLING_SHARE = 0.8


def quota(name: str, region: str | None) -> TokenBucket:
    """The quota in `region`; None (region unknown) gives the lower figure, which holds everywhere."""
    large, other = STANDARD_QUOTAS[name]
    return large if region in LARGE_REGIONS else other


@dataclass(frozen=True)
class RateLimit:
    quota: str  # the quota's name, e.g. StateTransition
    max_rate: float  # executions started per second it allows, sustained
    why: str  # how the figure follows from the quota


def start_rate_limits(
    region: str | None,
    *,
    transitions_per_execution: int = TRANSITIONS_PER_EXECUTION,
    start_execution_refill: float | None = None,
    state_transition_refill: float | None = None,
) -> list[RateLimit]:
    """What caps a sustained start rate, lowest first: StartExecution itself, and the state transitions
    every execution then makes. Passing an account's own refill rate replaces the table's."""
    where = region or "any region"
    starts = start_execution_refill or quota("StartExecution", region).refill_per_second
    transitions = state_transition_refill or quota("StateTransition", region).refill_per_second
    limits = [
        RateLimit("StartExecution", starts, f"StartExecution refills at {starts:g}/s in {where}"),
        RateLimit(
            "StateTransition",
            transitions / transitions_per_execution,
            f"StateTransition refills at {transitions:g}/s in {where}, and each execution makes up to "
            f"{transitions_per_execution} transitions: {transitions:g} / {transitions_per_execution} = "
            f"{transitions / transitions_per_execution:g} executions/s",
        ),
    ]
    return sorted(limits, key=lambda limit: limit.max_rate)


def polling_rate(region: str | None, requested: float | None = None) -> float:
    """DescribeExecution calls per second the load may make: `requested`, at most POLLING_SHARE of the
    refill (15/s in the large regions, 10/s elsewhere)."""
    ceiling = POLLING_SHARE * quota("DescribeExecution", region).refill_per_second
    return ceiling if requested is None else min(requested, ceiling)
