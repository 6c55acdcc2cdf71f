"""FailedExecutionsAlarm's metric math, evaluated over the datapoints a scenario of executions produces.

A tiny evaluator of the expressions CloudWatch alarms accept here (+, -, comparisons, FILL, IF) runs the
alarm's own Metrics list from template.yaml. Each scenario says what ended how, in which state machine;
`datapoints` turns that into what each metric would hold for the 5-minute period, as AWS and the
functions emit them. A metric with no datapoint is absent, not 0: how CloudWatch pairs two series when
one has a gap is not something to rely on, so the evaluator leaves such a sum empty unless FILL fills it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import props_of

Series = float | None  # one period: a value, or no datapoint

# What each outcome adds to which metric (namespace, name, the dimension value's source).
MAIN = "ImageClassificationStateMachine"
BATCH = "BatchClassificationStateMachine"
SERVICE = "scones-image-classification"
EMITTED: dict[str, list[tuple[str, str, str]]] = {
    # A single-image execution that failed for a real reason (unreadable image, endpoint, timeout).
    "main_failed": [("AWS/States", "ExecutionsFailed", MAIN)],
    # A single-image execution below the threshold: the filter's metric, then the ASL's own count just
    # before THRESHOLD_CONFIDENCE_NOT_MET fails the execution.
    "main_low_confidence": [
        ("SconesUnlimited", "LowConfidenceImages", SERVICE),
        ("SconesUnlimited", "LowConfidenceExecutions", SERVICE),
        ("AWS/States", "ExecutionsFailed", MAIN),
    ],
    "main_classified": [("SconesUnlimited", "ImagesAccepted", SERVICE)],
    # Batch images: the filter's metric per image, summarize_batch's counts at the end; the child
    # executions succeed (each ends with an outcome) and report under a per-Map-Run label.
    "batch_low_confidence": [
        ("SconesUnlimited", "LowConfidenceImages", SERVICE),
        ("SconesUnlimited", "BatchImagesLowConfidence", SERVICE),
    ],
    "batch_failed_image": [("SconesUnlimited", "BatchImagesFailed", SERVICE)],
    "batch_classified": [("SconesUnlimited", "ImagesAccepted", SERVICE)],
    # A batch that could not run (prefix unreadable, results not written, summary failed).
    "batch_failed": [("AWS/States", "ExecutionsFailed", BATCH)],
}
REAL_FAILURES = {"main_failed", "batch_failed_image", "batch_failed"}


def datapoints(scenario: Counter[str]) -> dict[tuple[str, str, str], float]:
    points: Counter[tuple[str, str, str]] = Counter()
    for outcome, count in scenario.items():
        for key in EMITTED[outcome]:
            points[key] += count
    return dict(points)


# -- the evaluator -----------------------------------------------------------------------------------
TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|[-+*/(),<>]))")


@dataclass
class Parser:
    tokens: list[str]
    values: dict[str, Series]
    position: int = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.tokens[self.position]
        assert expected is None or token == expected, f"expected {expected!r}, got {token!r}"
        self.position += 1
        return token

    def comparison(self) -> Series:
        left = self.sum()
        if self.peek() in (">", "<", ">=", "<="):
            operator, right = self.take(), self.sum()
            if left is None or right is None:
                return None
            return float(
                {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[operator]
            )
        return left

    def sum(self) -> Series:
        value = self.term()
        while self.peek() in ("+", "-"):
            operator, right = self.take(), self.term()
            value = None if value is None or right is None else value + (right if operator == "+" else -right)
        return value

    def term(self) -> Series:
        value = self.atom()
        while self.peek() in ("*", "/"):
            operator, right = self.take(), self.atom()
            if value is None or right is None or (operator == "/" and right == 0):
                value = None
            else:
                value = value * right if operator == "*" else value / right
        return value

    def atom(self) -> Series:
        token = self.take()
        if token == "(":
            value = self.comparison()
            self.take(")")
            return value
        if token == "-":
            inner = self.atom()
            return None if inner is None else -inner
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            return float(token)
        if self.peek() == "(":
            return self.call(token)
        assert token in self.values, f"unknown id {token!r}"
        return self.values[token]

    def call(self, name: str) -> Series:
        self.take("(")
        arguments = [self.comparison()]
        while self.peek() == ",":
            self.take(",")
            arguments.append(self.comparison())
        self.take(")")
        if name == "FILL":  # FILL(series, value): the value where the series has no datapoint
            series, value = arguments
            return value if series is None else series
        if name == "IF":  # IF(condition, then, else), per datapoint
            condition, then, otherwise = arguments
            return None if condition is None else (then if condition else otherwise)
        raise AssertionError(f"the evaluator does not know {name}()")


def evaluate(expression: str, values: dict[str, Series]) -> Series:
    tokens = [next(group for group in match.groups() if group) for match in TOKEN.finditer(expression)]
    assert "".join(tokens) == re.sub(r"\s+", "", expression), f"cannot tokenise {expression!r}"
    parser = Parser(tokens, values)
    result = parser.comparison()
    assert parser.peek() is None, f"left over in {expression!r}: {parser.tokens[parser.position :]}"
    return result


def metric_key(stat: dict[str, Any]) -> tuple[str, str, str]:
    metric = stat["Metric"]
    ((dimension,),) = [metric["Dimensions"]]
    value = dimension["Value"]
    source = value["Ref"] if isinstance(value, dict) else value
    return metric["Namespace"], metric["MetricName"], source


def alarm_value(alarm: dict[str, Any], points: dict[tuple[str, str, str], float]) -> Series:
    """The alarm's returned expression for one period, its expressions evaluated in dependency order."""
    values: dict[str, Series] = {
        m["Id"]: points.get(metric_key(m["MetricStat"])) for m in alarm["Metrics"] if "MetricStat" in m
    }
    expressions = {m["Id"]: m["Expression"] for m in alarm["Metrics"] if "Expression" in m}
    while expressions:
        ready = {
            i: e
            for i, e in expressions.items()
            if not (set(re.findall(r"[a-z][A-Za-z0-9_]*", e)) & set(expressions))
        }
        assert ready, f"expressions refer to each other: {sorted(expressions)}"
        for metric_id, expression in ready.items():
            values[metric_id] = evaluate(expression, values)
            del expressions[metric_id]
    (returned,) = [m["Id"] for m in alarm["Metrics"] if m.get("ReturnData", True)]
    return values[returned]


def breaches(alarm: dict[str, Any], value: Series, threshold: float) -> bool:
    """GreaterThanOrEqualToThreshold; no datapoint is notBreaching (TreatMissingData)."""
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    return value is not None and value >= threshold


@pytest.fixture(scope="module")
def alarm(resources: dict[str, Any]) -> dict[str, Any]:
    return props_of(resources, "FailedExecutionsAlarm")


# -- the evaluator itself ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "values", "expected"),
    [
        ("a + b - c", {"a": 2.0, "b": 1.0, "c": 1.0}, 2.0),
        ("a + b", {"a": 2.0, "b": None}, None),
        ("FILL(a, 0) + FILL(b, 0)", {"a": 2.0, "b": None}, 2.0),
        ("IF(a > 0, a, 0)", {"a": -3.0}, 0.0),
        ("IF(a > 0, a, 0) + 1", {"a": 2.0}, 3.0),
        ("low / (accepted + low)", {"low": 1.0, "accepted": 3.0}, 0.25),
    ],
)
def test_evaluator(expression: str, values: dict[str, Series], expected: Series) -> None:
    assert evaluate(expression, values) == expected


# -- the alarm ---------------------------------------------------------------------------------------
SCENARIOS = {
    # The case: N unsure batch images must not hide N real single-image failures.
    "batch low confidence beside single failures": Counter(batch_low_confidence=3, main_failed=3),
    "batch low confidence beside failed batch images": Counter(batch_low_confidence=3, batch_failed_image=2),
    "single low confidence beside failed batch images": Counter(main_low_confidence=4, batch_failed_image=1),
    "single low confidence beside single failures": Counter(main_low_confidence=2, main_failed=1),
    "a batch that could not run": Counter(batch_failed=1, batch_low_confidence=5),
    "everything at once": Counter(
        main_failed=2,
        main_low_confidence=3,
        main_classified=10,
        batch_low_confidence=7,
        batch_failed_image=4,
        batch_classified=40,
        batch_failed=1,
    ),
    "low confidence only": Counter(main_low_confidence=3, batch_low_confidence=3, main_classified=5),
    "all classified": Counter(main_classified=5, batch_classified=50),
    "nothing ran": Counter(),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_alarm_counts_each_real_failure_once_and_no_low_confidence(
    alarm: dict[str, Any], scenario: Counter[str]
) -> None:
    # Given the datapoints a period with these outcomes leaves in CloudWatch
    points = datapoints(scenario)
    # When the alarm's metric math is evaluated over them
    value = alarm_value(alarm, points)
    # Then it is the number of images (and batches) that really failed, whatever else happened
    real = sum(count for outcome, count in scenario.items() if outcome in REAL_FAILURES)
    assert (value or 0.0) == real
    # And with the default threshold of 1 the alarm goes off exactly when something really failed
    assert breaches(alarm, value, threshold=1) == (real > 0)


def test_n_batch_low_confidence_images_do_not_hide_n_failures(alarm: dict[str, Any]) -> None:
    # Given N low-confidence batch images and N real failures, at each threshold up to N
    for n in range(1, 6):
        points = datapoints(Counter(batch_low_confidence=n, main_failed=n))
        # When the alarm is evaluated / Then it goes off at a threshold of N
        assert breaches(alarm, alarm_value(alarm, points), threshold=n), n


def test_alarm_reads_each_state_machine_and_the_project_namespace(alarm: dict[str, Any]) -> None:
    # Given the alarm's metrics
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    # When their sources are read
    # Then each is a 5-minute sum, of the two state machines and of the functions' EMF service, and the
    # filter's LowConfidenceImages (which batch images emit too) is not among them
    assert all(s["Period"] == 300 and s["Stat"] == "Sum" for s in stats.values())
    sources = {metric_key(s) for s in stats.values()}
    assert sources == {
        ("AWS/States", "ExecutionsFailed", MAIN),
        ("AWS/States", "ExecutionsTimedOut", MAIN),
        ("SconesUnlimited", "LowConfidenceExecutions", SERVICE),
        ("SconesUnlimited", "BatchImagesFailed", SERVICE),
        ("AWS/States", "ExecutionsFailed", BATCH),
        ("AWS/States", "ExecutionsTimedOut", BATCH),
    }
    assert alarm["Threshold"] == {"Ref": "FailedExecutionsAlarmThreshold"}
    assert alarm["EvaluationPeriods"] == 1


def test_low_confidence_executions_are_counted_by_the_main_state_machine_only(
    asl: dict[str, Any], resources: dict[str, Any], project_root: Path
) -> None:
    # Given the main definition's path to THRESHOLD_CONFIDENCE_NOT_MET, and the batch definition
    batch = (project_root / "statemachine" / "batch_classification.asl.json").read_text()
    count = asl["States"]["CountLowConfidenceExecution"]
    # When the state that counts it is read
    # Then it puts LowConfidenceExecutions (1, Count) right before the Fail state, whether or not the
    # review steps before it worked; nothing else leads to that Fail state; the batch never puts it
    assert count["Resource"] == "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"
    (datum,) = count["Parameters"]["MetricData"]
    assert (datum["MetricName"], datum["Value"], datum["Unit"]) == ("LowConfidenceExecutions", 1, "Count")
    assert [count["Next"], *(c["Next"] for c in count["Catch"])] == ["ThresholdConfidenceNotMet"] * 2

    def leads_to(target: str) -> list[str]:
        return sorted(
            name
            for name, state in asl["States"].items()
            if target in [state.get("Next"), *(c["Next"] for c in state.get("Catch", []))]
        )

    assert leads_to("CountLowConfidenceExecution") == ["KeepForReview", "PublishReviewRequest"]
    assert leads_to("ThresholdConfidenceNotMet") == ["CountLowConfidenceExecution"]
    assert "LowConfidenceExecutions" not in batch
    # And the state machine may put it, in the project's namespace only
    statements = props_of(resources, "ImageClassificationStateMachine")["Policies"][0]["Statement"]
    (put,) = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData"]
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": "SconesUnlimited"}}
