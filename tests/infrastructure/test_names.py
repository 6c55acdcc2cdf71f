"""Every name template.yaml gives a resource fits that resource's limit, for the longest stack name.

CloudFormation allows stack names of up to 128 characters; several names here are built from the stack
name. The names are resolved as CloudFormation would (Ref, Fn::Sub, Fn::Select, Fn::Split, Fn::Join)
with such a stack name and a real-looking stack id, then measured.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

LONGEST_STACK_NAME = "s" + "-0123456789abcdef" * 7 + "x" * 8  # letters, digits, hyphens: 128 characters
STACK_UUID = "5f3c7c10-0b2a-11ef-9a3e-0a1b2c3d4e5f"
PSEUDO = {
    "AWS::StackName": LONGEST_STACK_NAME,
    "AWS::StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/{LONGEST_STACK_NAME}/{STACK_UUID}",
    "AWS::Region": "ap-southeast-2",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
}
# Resource type -> (its name property, the longest name the service accepts).
NAME_LIMITS: dict[str, tuple[str, int]] = {
    "AWS::Serverless::StateMachine": ("Name", 80),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", 80),
    "AWS::Serverless::Function": ("FunctionName", 64),
    "AWS::Lambda::Function": ("FunctionName", 64),
    "AWS::Serverless::LayerVersion": ("LayerName", 140),
    "AWS::CloudWatch::Alarm": ("AlarmName", 255),
    "AWS::CloudWatch::Dashboard": ("DashboardName", 255),
    "AWS::Logs::LogGroup": ("LogGroupName", 512),
    "AWS::Events::Rule": ("Name", 64),
    "AWS::Events::EventBus": ("Name", 256),
    "AWS::SQS::Queue": ("QueueName", 80),
    "AWS::SNS::Topic": ("TopicName", 256),
    "AWS::KMS::Alias": ("AliasName", 256),
    "AWS::DynamoDB::Table": ("TableName", 255),
    "AWS::IAM::Role": ("RoleName", 64),
}
NAME_PROPERTY = re.compile(r"^(Name|[A-Z][A-Za-z]*Name)$")
# Properties ending in Name that name something else (another resource, a display label).
NOT_OWN_NAMES = {"DisplayName", "BucketName", "EndpointName", "MetricName"}


class Resolve:
    """CloudFormation's intrinsic functions, over the pseudo parameters and the parameters' defaults."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.refs: dict[str, Any] = dict(PSEUDO)
        for name, spec in template["Parameters"].items():
            self.refs[name] = str(spec.get("Default", ""))
        for logical_id in template["Resources"]:
            self.refs.setdefault(logical_id, f"{logical_id}-ref")

    def __call__(self, node: Any, variables: dict[str, Any] | None = None) -> Any:
        if isinstance(node, list):
            return [self(item, variables) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {key: self(value, variables) for key, value in node.items()}
        ((function, argument),) = node.items()
        if function == "Ref":
            return self.refs[argument]
        if function == "Fn::GetAtt":
            return f"{argument[0]}-{argument[1]}"
        if function == "Fn::Select":
            index, items = argument
            return self(items, variables)[int(index)]
        if function == "Fn::Split":
            separator, text = argument
            return str(self(text, variables)).split(separator)
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(str(item) for item in self(items, variables))
        if function == "Fn::Sub":
            text, own = (argument, {}) if isinstance(argument, str) else argument
            values = {**self.refs, **{key: self(value) for key, value in own.items()}}
            return re.sub(r"\$\{([^}!]+)\}", lambda match: str(values[match.group(1)]), text)
        return {function: self(argument, variables)}


def test_the_stack_name_is_as_long_as_cloudformation_allows() -> None:
    assert len(LONGEST_STACK_NAME) == 128
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", LONGEST_STACK_NAME)


def test_every_named_resource_type_has_a_known_limit(template: dict[str, Any]) -> None:
    # Given every resource that sets a property naming itself
    for logical_id, resource in template["Resources"].items():
        names = [
            key
            for key in resource.get("Properties", {})
            if NAME_PROPERTY.match(key) and key not in NOT_OWN_NAMES
        ]
        # When its type is looked up / Then this test knows the limit of that name
        for key in names:
            assert resource["Type"] in NAME_LIMITS, (
                f"{logical_id}: {resource['Type']}.{key} has no known limit"
            )
            assert NAME_LIMITS[resource["Type"]][0] == key, f"{logical_id}: {key}"


@pytest.mark.parametrize("resource_type", sorted(NAME_LIMITS))
def test_names_fit_their_limit_with_the_longest_stack_name(
    template: dict[str, Any], resource_type: str
) -> None:
    # Given each resource of this type that names itself, and a stack name of 128 characters
    resolve = Resolve(template)
    key, limit = NAME_LIMITS[resource_type]
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != resource_type or key not in resource.get("Properties", {}):
            continue
        # When its name is resolved as CloudFormation would
        name = resolve(resource["Properties"][key])
        # Then it fits (CloudFormation would fail the whole stack otherwise)
        assert isinstance(name, str), f"{logical_id}: {name!r}"
        assert len(name) <= limit, f"{logical_id}.{key} is {len(name)} > {limit} characters: {name}"


def test_the_batch_state_machine_name_and_its_role_agree(template: dict[str, Any]) -> None:
    # Given the batch state machine's name and the ARNs its own role grants on, resolved
    resolve = Resolve(template)
    properties = template["Resources"]["BatchClassificationStateMachine"]["Properties"]
    name = resolve(properties["Name"])
    statements = {s["Sid"]: s for s in properties["Policies"][0]["Statement"]}
    # When they are compared / Then the role names exactly this state machine and its executions
    assert name == f"batch-classification-{STACK_UUID}"
    assert resolve(statements["StartChildExecutions"]["Resource"]).endswith(f":stateMachine:{name}")
    assert resolve(statements["ManageChildExecutions"]["Resource"]).endswith(f":execution:{name}/*")
