"""The local EventBridge: pattern matching and input transformers, as AWS documents them."""

from __future__ import annotations

import json

import pytest

from harness.local.eventbridge import matches, object_created, transform

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


# --- placeholders whose path the event lacks, as EventBridge fills them ------------------------------

UPLOAD = {"detail": {"object": {"key": "incoming/a.png", "etag": "e1"}}}  # no version-id: unversioned


def test_a_missing_path_outside_quotes_becomes_an_empty_string_not_null() -> None:
    # Given a placeholder standing as a value whose path the event does not have
    message = transform(UPLOAD, {"version": "$.detail.object.version-id"}, '{"version_id": <version>}')
    # Then EventBridge leaves it empty: "" (valid JSON), not null
    assert json.loads(message) == {"version_id": ""}


def test_a_missing_path_inside_quotes_inserts_nothing() -> None:
    paths = {"version": "$.detail.object.version-id", "key": "$.detail.object.key"}
    message = transform(UPLOAD, paths, '{"version_id": "<version>", "text": "<key> v<version>."}')
    assert json.loads(message) == {"version_id": "", "text": "incoming/a.png v."}


def test_a_present_null_is_still_inserted_as_null() -> None:
    # Given a field that exists with the value null (an aborted execution's error)
    message = transform(EVENT, {"cause": "$.detail.cause"}, '{"cause": <cause>}')
    assert json.loads(message) == {"cause": None}


def test_a_missing_intermediate_object_counts_as_missing() -> None:
    message = transform(UPLOAD, {"name": "$.detail.bucket.name"}, '{"bucket": <name>, "b": "<name>"}')
    assert json.loads(message) == {"bucket": "", "b": ""}


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("incoming/red flower.png", "incoming/red+flower.png"),
        ("incoming/a+b.png", "incoming/a%2Bb.png"),
        ("incoming/100%.png", "incoming/100%25.png"),
        ("incoming/vélo.png", "incoming/v%C3%A9lo.png"),
        ("incoming/plain-name_1.v2.png", "incoming/plain-name_1.v2.png"),
    ],
)
def test_object_created_events_carry_the_key_url_encoded(key: str, encoded: str) -> None:
    event = object_created("bucket", key, 1, "e", None)
    assert event["detail"]["object"]["key"] == encoded
    assert "version-id" not in event["detail"]["object"]
