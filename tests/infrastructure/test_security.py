"""Security properties of template.yaml: encryption, who may publish or send, notifications, wildcards."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import props_of

FAILURE_STATUSES = {"FAILED", "TIMED_OUT", "ABORTED"}
FOURTEEN_DAYS = 14 * 24 * 3600
ROOT_PRINCIPAL = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
# Where each kind of resource keeps its policy document(s).
POLICY_PROPERTIES = {
    "AWS::IAM::Role": "Policies",
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::Serverless::Function": "Policies",
    "AWS::Serverless::StateMachine": "Policies",
}
CHECK_ID = re.compile(r"^CKV2?_AWS_\d+$")
VARIABLE = re.compile(r"<([A-Za-z0-9_.-]+)>")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every policy document in the template, with its resource's logical id."""
    for logical_id, resource in resources.items():
        key = POLICY_PROPERTIES.get(resource["Type"])
        value = resource.get("Properties", {}).get(key) if key else None
        if not value:
            continue
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in value]
        elif isinstance(value, list):  # SAM Policies: inline documents (policy templates have no Statement)
            documents = [policy for policy in value if isinstance(policy, dict) and "Statement" in policy]
        else:
            documents = [value]
        for document in documents:
            for statement in as_list(document["Statement"]):
                yield logical_id, statement


def statement_by_sid(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    (found,) = [s for s in statements if s.get("Sid") == sid]
    return found


def render_input_template(template: str, values: dict[str, Any]) -> str:
    """EventBridge's substitution: a variable inside a JSON string is inserted as raw text, a variable
    standing as a value is inserted as that value's JSON (strings quoted and escaped, null as null)."""
    out, in_string, escaped, index = [], False, False, 0
    while index < len(template):
        char = template[index]
        match = VARIABLE.match(template, index) if char == "<" else None
        if match:
            value = values[match.group(1)]
            out.append(str(value) if in_string else json.dumps(value))
            index = match.end()
            continue
        if in_string and escaped:
            escaped = False
        elif in_string and char == "\\":
            escaped = True
        elif char == '"':
            in_string = not in_string
        out.append(char)
        index += 1
    return "".join(out)


@pytest.fixture(scope="module")
def skips(project_root: Path) -> list[dict[str, Any]]:
    return yaml.safe_load((project_root / "security" / "checkov-skips.yaml").read_text(encoding="utf-8"))[
        "skips"
    ]


@pytest.fixture(scope="module")
def justified_wildcards(project_root: Path) -> dict[str, Any]:
    return yaml.safe_load((project_root / "security" / "iam-wildcards.yaml").read_text(encoding="utf-8"))


# --- notification topic and its key ---------------------------------------------------------------


def test_topic_is_encrypted_with_the_customer_managed_key(resources: dict[str, Any]) -> None:
    # Given the notification topic / When its encryption key is read
    key = props_of(resources, "NotificationTopic")["KmsMasterKeyId"]
    # Then it is the stack's own key: EventBridge cannot publish to a topic under alias/aws/sns
    assert key == {"Fn::GetAtt": ["NotificationKey", "Arn"]}
    assert resources["NotificationKey"]["Type"] == "AWS::KMS::Key"


def test_notification_key_rotates(resources: dict[str, Any]) -> None:
    # Given the key / When its rotation is read / Then KMS rotates its material every year
    assert props_of(resources, "NotificationKey")["EnableKeyRotation"] is True


def test_key_policy_lets_the_account_manage_and_eventbridge_use_the_key(resources: dict[str, Any]) -> None:
    # Given the key policy
    found = as_list(props_of(resources, "NotificationKey")["KeyPolicy"]["Statement"])
    # When its statements are read
    root = statement_by_sid(found, "EnableIamPolicies")
    events = statement_by_sid(found, "AllowEventBridgeToPublishToTheTopic")
    # Then the account (through IAM) manages the key, and EventBridge may only generate and decrypt
    # data keys, which SNS needs to encrypt what the rule publishes. No aws:SourceAccount/SourceArn:
    # the SNS developer guide says they are not supported for EventBridge-to-encrypted-topic delivery
    # (with them every notification is dropped); the topic policy names the rule instead.
    assert root["Principal"] == ROOT_PRINCIPAL
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert set(as_list(events["Action"])) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert "Condition" not in events
    # The third statement is the alarms' (tests/infrastructure/test_operations.py)
    assert [s["Sid"] for s in found] == [
        "EnableIamPolicies",
        "AllowEventBridgeToPublishToTheTopic",
        "AllowTheAlarmsToPublishToTheTopic",
    ]


def test_only_the_failure_rule_may_publish_to_the_topic(resources: dict[str, Any]) -> None:
    # Given the topic policy
    policy = props_of(resources, "NotificationTopicPolicy")
    found = as_list(policy["PolicyDocument"]["Statement"])
    allows = [s for s in found if s["Effect"] == "Allow"]
    # When its Allow statements are read
    # Then EventBridge may publish, and only on behalf of this stack's rule (aws:SourceArn); the other
    # Allow is the stack's alarms' (tests/infrastructure/test_operations.py)
    assert policy["Topics"] == [{"Ref": "NotificationTopic"}]
    assert [s["Sid"] for s in allows] == ["AllowTheFailureRuleToPublish", "AllowTheAlarmsToPublish"]
    assert allows[:1] == [
        {
            "Sid": "AllowTheFailureRuleToPublish",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": {"Ref": "NotificationTopic"},
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ExecutionFailedRule", "Arn"]}}},
        }
    ]


@pytest.mark.parametrize(
    ("policy_id", "action", "target"),
    [
        ("NotificationTopicPolicy", "sns:Publish", {"Ref": "NotificationTopic"}),
        ("ReviewQueuePolicy", "sqs:*", {"Fn::GetAtt": ["ReviewQueue", "Arn"]}),
    ],
)
def test_topic_and_queue_refuse_requests_without_tls(
    resources: dict[str, Any], policy_id: str, action: str, target: dict[str, Any]
) -> None:
    # Given the topic's or the queue's policy
    found = as_list(props_of(resources, policy_id)["PolicyDocument"]["Statement"])
    # When its Deny statement is read
    deny = statement_by_sid(found, "DenyInsecureTransport")
    # Then every request without TLS is refused
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Action"] == action
    assert deny["Resource"] == target
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_email_subscription_only_when_an_address_is_given(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    # Given the NotificationEmail parameter and the subscription
    parameter = template["Parameters"]["NotificationEmail"]
    subscription = resources["NotificationEmailSubscription"]
    # When the condition on the subscription is read
    # Then the stack subscribes the address only when one is given, and by default none is
    assert parameter["Default"] == ""
    assert subscription["Condition"] == "SubscribeNotificationEmail"
    assert template["Conditions"]["SubscribeNotificationEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationEmail"}, ""]}]
    }
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "NotificationTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "NotificationEmail"},
    }


@pytest.mark.parametrize(
    ("address", "accepted"),
    [("", True), ("ops@example.com", True), ("a.b+scones@sub.example.org", True), ("ops", False),
     ("ops@example", False), ("two words@example.com", False)],
)  # fmt: skip
def test_notification_email_is_empty_or_an_address(
    template: dict[str, Any], address: str, accepted: bool
) -> None:
    # Given the parameter's pattern / When an address is checked / Then only empty or an address passes
    pattern = template["Parameters"]["NotificationEmail"]["AllowedPattern"]
    assert (re.fullmatch(pattern, address) is not None) is accepted


# --- failure rule ---------------------------------------------------------------------------------


def test_rule_matches_failed_timed_out_and_aborted_executions(resources: dict[str, Any]) -> None:
    # Given the rule's event pattern
    rule = props_of(resources, "ExecutionFailedRule")
    pattern = rule["EventPattern"]
    # When its fields are read
    # Then it matches Step Functions' status-change events that end an execution badly, for this
    # state machine only
    assert rule["State"] == "ENABLED"
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert set(pattern["detail"]["status"]) == FAILURE_STATUSES
    assert pattern["detail"]["stateMachineArn"] == [
        {"Ref": "ImageClassificationStateMachine"},
        {"Ref": "BatchClassificationStateMachine"},
    ]


def test_rule_publishes_a_json_message_naming_the_execution_and_its_error(resources: dict[str, Any]) -> None:
    # Given the rule's only target and an event as Step Functions sends it (detail.input is a string)
    (target,) = props_of(resources, "ExecutionFailedRule")["Targets"]
    transformer = target["InputTransformer"]
    execution_input = json.dumps({"s3_bucket": "images", "s3_key": 'test/a "quoted" name.png'})
    event = {
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:sm:run-1",
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:sm",
        "status": "FAILED",
        "error": "THRESHOLD_CONFIDENCE_NOT_MET",
        "cause": '{"errorMessage": "confidence 0.6987 is below the threshold 0.9300"}',
        "input": execution_input,
        "time": "2025-01-01T00:00:00Z",
        "region": "us-east-1",
    }
    # When EventBridge fills the input template
    assert target["Arn"] == {"Ref": "NotificationTopic"}
    assert set(VARIABLE.findall(transformer["InputTemplate"])) <= set(transformer["InputPathsMap"])
    message = json.loads(render_input_template(transformer["InputTemplate"], event))
    # Then the message is JSON with the execution, its status, error, cause and input (s3_bucket, s3_key)
    assert message["executionArn"] == event["executionArn"]
    assert message["status"] == "FAILED"
    assert message["error"] == "THRESHOLD_CONFIDENCE_NOT_MET"
    assert message["cause"] == event["cause"]
    assert json.loads(message["input"]) == {"s3_bucket": "images", "s3_key": 'test/a "quoted" name.png'}
    assert transformer["InputPathsMap"]["input"] == "$.detail.input"
    assert {transformer["InputPathsMap"][name] for name in ("error", "cause", "status", "executionArn")} == {
        "$.detail.error",
        "$.detail.cause",
        "$.detail.status",
        "$.detail.executionArn",
    }


def test_rule_message_survives_an_aborted_execution_without_error(resources: dict[str, Any]) -> None:
    # Given the target's transformer and an aborted execution, whose error and cause may be null
    (target,) = props_of(resources, "ExecutionFailedRule")["Targets"]
    transformer = target["InputTransformer"]
    values: dict[str, Any] = dict.fromkeys(transformer["InputPathsMap"], "x")
    values.update(status="ABORTED", error=None, cause=None)
    # When the template is filled / Then the message is still valid JSON
    message = json.loads(render_input_template(transformer["InputTemplate"], values))
    assert message["error"] is None


# --- review queue ---------------------------------------------------------------------------------


def test_review_queue_is_encrypted_and_keeps_messages_fourteen_days(resources: dict[str, Any]) -> None:
    # Given the review queue / When its encryption and retention are read
    props = props_of(resources, "ReviewQueue")
    # Then messages are encrypted at rest and kept as long as SQS allows
    assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props
    assert props["MessageRetentionPeriod"] == FOURTEEN_DAYS


# --- every policy in the template -----------------------------------------------------------------


def test_no_allow_statement_has_a_public_principal(resources: dict[str, Any]) -> None:
    # Given every statement of every policy / When the Allow statements' principals are read
    # Then none is "*" (anyone): only Deny statements may name everyone
    for logical_id, statement in policy_statements(resources):
        if statement["Effect"] == "Allow" and "Principal" in statement:
            principal = statement["Principal"]
            assert principal != "*" and principal != {"AWS": "*"}, logical_id


def test_every_wildcard_allow_statement_is_justified(
    resources: dict[str, Any], justified_wildcards: dict[str, Any]
) -> None:
    # Given every Allow statement of every policy, identity or resource
    listed = {(entry["resource"], entry["sid"]) for entry in justified_wildcards["statements"]}
    function_roles = {
        props_of(resources, lid)["Role"]["Fn::GetAtt"][0]: lid
        for lid, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    generated = {
        "ImageClassificationStateMachine": "ImageClassificationStateMachineRole",
        "BatchClassificationStateMachine": "BatchClassificationStateMachineRole",
    }
    for logical_id, statement in policy_statements(resources):
        if statement["Effect"] != "Allow":
            continue
        # When it has a wildcard action or Resource "*"
        actions = [str(action) for action in as_list(statement["Action"])]
        if any("*" in action for action in actions) or "*" in as_list(statement.get("Resource")):
            # Then security/iam-wildcards.yaml says why (under the role's name after the SAM transform)
            where = generated.get(logical_id, logical_id)
            assert (where, statement.get("Sid")) in listed, f"{where}/{statement.get('Sid')}: {actions}"
            assert where in function_roles or where in generated.values() or where == "NotificationKey"


def test_justified_wildcards_all_have_reasons(justified_wildcards: dict[str, Any]) -> None:
    # Given the wildcard list / When each entry is read / Then it says why in one line
    for entry in [*justified_wildcards["statements"], *justified_wildcards["managed_policies"]]:
        assert entry["reason"].strip() and "\n" not in entry["reason"].strip(), entry


def test_only_kms_default_statement_grants_a_wildcard_action(resources: dict[str, Any]) -> None:
    # Given every Allow statement / When its actions contain "*"
    wildcard = [
        (logical_id, statement.get("Sid"))
        for logical_id, statement in policy_statements(resources)
        if statement["Effect"] == "Allow" and any("*" in str(a) for a in as_list(statement["Action"]))
    ]
    # Then it is KMS's default key statement for the account root (IAM then decides), and the
    # alarms' kms:GenerateDataKey*, which is the statement the SNS developer guide gives for AWS
    # event sources of encrypted topics (limited to this stack's alarms by aws:SourceArn)
    assert wildcard == [
        ("NotificationKey", "EnableIamPolicies"),
        ("NotificationKey", "AllowTheAlarmsToPublishToTheTopic"),
    ]


# --- the checkov skip list ------------------------------------------------------------------------


def test_every_checkov_skip_names_a_check_resources_and_one_line_reason(
    resources: dict[str, Any], skips: list[dict[str, Any]]
) -> None:
    # Given the skip list
    for skip in skips:
        # When an entry is read
        # Then it names a checkov check, resources of the template and why the check does not fit
        assert CHECK_ID.match(skip["check"]), skip
        assert skip["resources"], skip
        assert set(skip["resources"]) <= set(resources), skip
        reason = skip["reason"].strip()
        assert reason and "\n" not in reason, skip


def test_checkov_skips_are_per_resource_not_global(skips: list[dict[str, Any]]) -> None:
    # Given the skip list / When the checks are counted / Then each check appears once, for named resources
    checks = [skip["check"] for skip in skips]
    assert len(checks) == len(set(checks))
    assert all("*" not in resource for skip in skips for resource in skip["resources"])


def test_security_checks_script_is_valid_bash(project_root: Path) -> None:
    # Given the CI security script / When bash parses it / Then it has no syntax error and stops on errors
    script = project_root / "scripts" / "security_checks.sh"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "set -euo pipefail" in script.read_text(encoding="utf-8")
