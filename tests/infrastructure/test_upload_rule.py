"""The upload rule against events as S3 writes them: URL-encoded keys, and no version-id from an
unversioned bucket (ExistingBucketName)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.local.eventbridge import encode_event_key, matches, object_created, transform
from harness.ops.deployed import UPLOAD_RULE_SUFFIXES
from scones_common.models import ImageRef, parse_event

BUCKET = "images"


def upload_pattern(resources: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The rule's event pattern with UploadPrefix and the bucket filled in, as CloudFormation would."""
    pattern = json.loads(json.dumps(resources["ImageUploadedRule"]["Properties"]["EventPattern"]))
    pattern["detail"]["bucket"]["name"] = [BUCKET]
    pattern["detail"]["object"]["key"] = [
        {"wildcard": option["wildcard"]["Fn::Sub"].replace("${UploadPrefix}", prefix)}
        for option in pattern["detail"]["object"]["key"]
    ]
    return pattern


def upload_event(key: str, version_id: str | None = "v1") -> dict[str, Any]:
    return object_created(BUCKET, key, 10, "etag1", version_id)


@pytest.mark.parametrize("prefix", ["", "incoming/", "uploads/2026/", "a.b_c-d/"])
def test_upload_prefix_accepts_prefixes_that_encoding_leaves_unchanged(
    template: dict[str, Any], prefix: str
) -> None:
    pattern = template["Parameters"]["UploadPrefix"]["AllowedPattern"]
    assert re.fullmatch(pattern, prefix) is not None
    assert encode_event_key(prefix) == prefix


@pytest.mark.parametrize(
    "prefix", ["my uploads/", "a+b/", "100%/", "vélo/", "incoming", "*/", "a?/", "/", "a//"]
)
def test_upload_prefix_refuses_prefixes_the_rule_could_not_match(
    template: dict[str, Any], prefix: str
) -> None:
    pattern = template["Parameters"]["UploadPrefix"]["AllowedPattern"]
    assert re.fullmatch(pattern, prefix) is None


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=30))
def test_every_accepted_prefix_is_its_own_url_encoding(prefix: str) -> None:
    # Given any text / When UploadPrefix's pattern accepts it / Then S3's encoding leaves it unchanged,
    # so the rule's wildcard compares like with like
    allowed = r"^$|^([A-Za-z0-9._-]+/)+$"
    if re.fullmatch(allowed, prefix):
        assert encode_event_key(prefix) == prefix


def test_the_pattern_in_the_template_is_the_one_checked_above(template: dict[str, Any]) -> None:
    assert template["Parameters"]["UploadPrefix"]["AllowedPattern"] == r"^$|^([A-Za-z0-9._-]+/)+$"


@pytest.mark.parametrize("prefix", ["", "incoming/", "uploads/2026/"])
@pytest.mark.parametrize("name", ["red flower.png", "a+b.PNG", "100%.jpg", "vélo électrique.jpeg"])
def test_the_rule_matches_encoded_keys_under_an_allowed_prefix(
    resources: dict[str, Any], prefix: str, name: str
) -> None:
    assert matches(upload_pattern(resources, prefix), upload_event(prefix + name))


def test_a_prefix_with_a_space_would_never_match(resources: dict[str, Any]) -> None:
    # Why UploadPrefix is constrained: the wildcard meets "my+uploads/...", never "my uploads/..."
    assert not matches(upload_pattern(resources, "my uploads/"), upload_event("my uploads/a.png"))


@pytest.mark.parametrize(
    "version_id", ["3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", None], ids=["versioned", "unversioned"]
)
def test_the_rule_input_is_the_workflow_input_with_or_without_a_version(
    resources: dict[str, Any], version_id: str | None
) -> None:
    # Given the rule's input transformer and an upload of "incoming/red flower.png"
    (target,) = resources["ImageUploadedRule"]["Properties"]["Targets"]
    transformer = target["InputTransformer"]
    event = upload_event("incoming/red flower.png", version_id)
    # When EventBridge fills the template (a missing version-id left empty, as EventBridge does)
    text = transform(event, transformer["InputPathsMap"], transformer["InputTemplate"])
    # Then it is JSON that the serialize step accepts, with the real key and "no version" as None
    ref = parse_event(ImageRef, json.loads(text))
    assert ref.s3_key == "incoming/red flower.png" and ref.etag == "etag1"
    assert ref.version_id == version_id


def test_deployed_stack_knows_the_rules_suffixes(resources: dict[str, Any]) -> None:
    # `scones run --stack` waits for the rule's execution exactly when the rule matches the key
    options = resources["ImageUploadedRule"]["Properties"]["EventPattern"]["detail"]["object"]["key"]
    suffixes = {option["wildcard"]["Fn::Sub"].removeprefix("${UploadPrefix}*") for option in options}
    assert suffixes == set(UPLOAD_RULE_SUFFIXES)
