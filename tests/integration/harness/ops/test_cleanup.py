"""`scones cleanup`: the endpoint first, then the stack, the kept bucket named; checked against moto."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from harness.cli.cleanup import cleanup_command
from harness.ops.cleanup import default_stack_name, samconfig_endpoint_name
from model.sagemaker_jobs.endpoint import VARIANT_NAME
from tests.helpers import fake_aws_environment

REGION = "us-east-1"
STACK = "scones-test"
BUCKET = "scones-test-images"
ENDPOINT = "scones-test-endpoint"
ROLE = "arn:aws:iam::123456789012:role/scones-sagemaker"
IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1"

# The parts of template.yaml that cleanup reads: the endpoint parameter and output, the retained
# bucket and its output, and one resource that goes with the stack.
STACK_TEMPLATE = {
    "Parameters": {
        "EndpointName": {"Type": "String"},
        "ExistingBucketName": {"Type": "String", "Default": ""},
    },
    "Resources": {
        "ImageBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "Properties": {"BucketName": BUCKET},
        },
        "ReviewQueue": {"Type": "AWS::SQS::Queue"},
    },
    "Outputs": {
        "ImageBucketName": {"Value": {"Ref": "ImageBucket"}},
        "ClassifierEndpointName": {"Value": {"Ref": "EndpointName"}},
    },
}


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    fake_aws_environment(monkeypatch, tmp_path, REGION)
    with mock_aws():
        yield {
            "cf": boto3.client("cloudformation", region_name=REGION),
            "sm": boto3.client("sagemaker", region_name=REGION),
            "s3": boto3.client("s3", region_name=REGION),
        }


@pytest.fixture
def aws(moto: dict[str, Any], sagemaker_sdk: None) -> dict[str, Any]:
    """moto, with the SageMaker SDK that deletes the endpoint (skipped without the sagemaker extra)."""
    return moto


def create_stack(cf: Any, endpoint: str = ENDPOINT) -> None:
    cf.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(STACK_TEMPLATE),
        Parameters=[{"ParameterKey": "EndpointName", "ParameterValue": endpoint}],
    )


def create_endpoint(sm: Any, name: str = ENDPOINT) -> None:
    """What `scones deploy` creates: model, configuration and endpoint, all named after the endpoint."""
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": VARIANT_NAME,
                "ModelName": name,
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def stack_names(cf: Any) -> list[str]:
    return [
        s["StackName"] for s in cf.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"
    ]


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cleanup_command, list(args), input=input)


def test_cleanup_deletes_the_endpoint_then_the_stack_and_keeps_the_bucket(aws: dict[str, Any]) -> None:
    # Given a deployed stack and the endpoint it calls
    create_stack(aws["cf"])
    create_endpoint(aws["sm"])
    # When cleanup runs without confirmation
    result = run("--stack", STACK, "--yes")
    # Then endpoint, configuration and model are gone, then the stack, in that order
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        f"deleted endpoint {ENDPOINT}",
        f"deleted endpoint configuration {ENDPOINT}",
        f"deleted model {ENDPOINT}",
        f"deleted stack {STACK} ({REGION})",
    ]
    assert aws["sm"].list_endpoints()["Endpoints"] == []
    assert aws["sm"].list_endpoint_configs()["EndpointConfigs"] == []
    assert aws["sm"].list_models()["Models"] == []
    assert stack_names(aws["cf"]) == []
    # And the retained bucket is still there, with the commands to empty and delete it
    assert BUCKET in [b["Name"] for b in aws["s3"].list_buckets()["Buckets"]]
    assert any(line.startswith(f"kept: image bucket {BUCKET}") for line in lines)
    assert f"  aws s3 rb s3://{BUCKET} --region {REGION}" in lines
    assert any("object_versions.delete()" in line and BUCKET in line for line in lines)


def test_cleanup_takes_the_endpoint_name_from_the_stack(aws: dict[str, Any]) -> None:
    # Given a stack deployed with another endpoint name
    create_stack(aws["cf"], endpoint="other-endpoint")
    create_endpoint(aws["sm"], "other-endpoint")
    # When cleanup runs without --endpoint-name / Then it deletes the endpoint the stack calls
    result = run("--stack", STACK, "--yes")
    assert result.exit_code == 0, result.output
    assert "deleted endpoint other-endpoint" in result.stdout.splitlines()


def test_cleanup_without_an_endpoint_still_deletes_the_stack(aws: dict[str, Any]) -> None:
    # Given a stack whose endpoint was already deleted
    create_stack(aws["cf"])
    # When cleanup runs / Then it says the endpoint was not there and deletes the stack
    result = run("--stack", STACK, "--endpoint-name", ENDPOINT, "--yes")
    assert result.exit_code == 0, result.output
    assert f"not found (nothing to delete): endpoint {ENDPOINT}" in result.stdout
    assert stack_names(aws["cf"]) == []


def test_cleanup_asks_first_and_deletes_nothing_when_refused(aws: dict[str, Any]) -> None:
    # Given a stack and its endpoint
    create_stack(aws["cf"])
    create_endpoint(aws["sm"])
    # When cleanup runs and the question is answered no
    result = run("--stack", STACK, input="n\n")
    # Then it names what it would delete, stops with a non-zero status and deletes nothing
    assert result.exit_code == 1
    assert f"Delete SageMaker endpoint '{ENDPOINT}'" in result.stderr
    assert f"stack '{STACK}' in {REGION}" in result.stderr
    assert stack_names(aws["cf"]) == [STACK]
    assert len(aws["sm"].list_endpoints()["Endpoints"]) == 1


def test_cleanup_proceeds_when_confirmed(aws: dict[str, Any]) -> None:
    # Given a stack / When the question is answered yes / Then the stack is deleted
    create_stack(aws["cf"])
    result = run("--stack", STACK, input="y\n")
    assert result.exit_code == 0, result.output
    assert stack_names(aws["cf"]) == []


def test_stack_not_found_is_one_line_and_deletes_nothing(aws: dict[str, Any]) -> None:
    # Given no stack but an endpoint
    create_endpoint(aws["sm"])
    # When cleanup names a stack that does not exist
    result = run("--stack", "no-such-stack", "--endpoint-name", ENDPOINT, "--yes")
    # Then one line on stderr, a non-zero status, no traceback, and the endpoint is untouched
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: stack 'no-such-stack' not found in {REGION}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(aws["sm"].list_endpoints()["Endpoints"]) == 1


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        (["AWS_DEFAULT_REGION"], "Error: no AWS region"),
        (["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], "Error: no AWS credentials"),
    ],
    ids=["no-region", "no-credentials"],
)
def test_setup_errors_are_one_line(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, drop: list[str], message: str
) -> None:
    # Given a shell without a region, or without credentials
    create_stack(aws["cf"])
    for name in drop:
        monkeypatch.delenv(name)
    # When cleanup runs / Then it fails with one line on stderr and no traceback, having deleted nothing
    result = run("--stack", STACK, "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert stack_names(aws["cf"]) == [STACK]


def test_without_the_sdk_nothing_is_deleted(moto: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a stack and its endpoint, and a Python where `import sagemaker` fails
    create_stack(moto["cf"])
    create_endpoint(moto["sm"])
    monkeypatch.setitem(sys.modules, "sagemaker", None)
    # When cleanup runs / Then one line says how to install the SDK, and the stack and endpoint stay
    result = run("--stack", STACK, "--yes")
    assert result.exit_code == 2  # harness.cli.errors: a missing extra exits 2
    assert result.stderr.strip() == (
        "Error: scones cleanup needs the SageMaker Python SDK (the `sagemaker` extra): "
        "pip install -e '.[sagemaker]'"
    )
    assert stack_names(moto["cf"]) == [STACK]
    assert len(moto["sm"].list_endpoints()["Endpoints"]) == 1


def test_defaults_come_from_samconfig() -> None:
    # Given samconfig.toml / When the defaults are read / Then they are the stack and endpoint sam deploys
    assert default_stack_name() == "scones-image-classification"
    assert samconfig_endpoint_name() == "scones-image-classifier"
