"""The local EventBridge: pattern matching and input transformers, as AWS documents them."""

from __future__ import annotations

import json

from harness.local.eventbridge import matches, transform

EVENT = {
    "source": "aws.states",
    "detail-type": "Step Functions Execution Status Change",
    "detail": {
        "status": "FAILED",
        "error": "InvalidImageError",
        "input": '{"s3_key": "a b.png"}',
        "cause": None,
    },
}


def test_exact_values_match() -> None:
    assert matches({"source": ["aws.states"], "detail": {"status": ["FAILED", "TIMED_OUT"]}}, EVENT)


def test_other_values_do_not_match() -> None:
    assert not matches({"detail": {"status": ["SUCCEEDED"]}}, EVENT)


def test_missing_field_does_not_match() -> None:
    assert not matches({"detail": {"nothing": ["x"]}}, EVENT)


def test_prefix_suffix_and_anything_but() -> None:
    assert matches({"detail": {"error": [{"prefix": "Invalid"}]}}, EVENT)
    assert matches({"detail": {"error": [{"suffix": "Error"}]}}, EVENT)
    assert not matches({"detail": {"error": [{"anything-but": ["InvalidImageError"]}]}}, EVENT)
    assert matches({"detail": {"error": [{"exists": True}], "absent": [{"exists": False}]}}, EVENT)


def test_transformer_inserts_json_values_outside_quotes_and_text_inside() -> None:
    paths = {"status": "$.detail.status", "input": "$.detail.input", "cause": "$.detail.cause"}
    message = transform(EVENT, paths, '{"subject": "run <status>", "input": <input>, "cause": <cause>}')
    assert json.loads(message) == {"subject": "run FAILED", "input": '{"s3_key": "a b.png"}', "cause": None}
