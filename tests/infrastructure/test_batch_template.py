"""Assertions on the batch classification stack: its state machine, role, function, and its ASL file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PROJECT_ROOT

BATCH_ASL = PROJECT_ROOT / "statemachine" / "batch_classification.asl.json"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
TRANSIENT_LAMBDA_ERRORS = {
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
BATCH_FUNCTIONS = [
    "SerializeImageDataFunction",
    "ClassifyImageFunction",
    "FilterInferencesFunction",
    "SummarizeBatchFunction",
]
OUTCOME_FIELDS = {"s3_key", "status", "label", "confidence", "error"}


@pytest.fixture(scope="module")
def machine(resources: dict[str, Any]) -> dict[str, Any]:
    return dict(resources["BatchClassificationStateMachine"]["Properties"])


@pytest.fixture(scope="module")
def statements(machine: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for policy in machine["Policies"] for s in policy["Statement"]}


@pytest.fixture(scope="module")
def batch_asl() -> dict[str, Any]:
    return dict(json.loads(BATCH_ASL.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def the_map(batch_asl: dict[str, Any]) -> dict[str, Any]:
    return dict(batch_asl["States"]["ClassifyEachImage"])


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- template.yaml ---------------------------------------------------------------------------------
def test_batch_state_machine_is_standard_traced_and_logs_errors(machine: dict[str, Any]) -> None:
    assert machine["Type"] == "STANDARD"
    assert machine["DefinitionUri"] == "statemachine/batch_classification.asl.json"
    assert machine["Tracing"] == {"Enabled": True}
    assert machine["Logging"]["Level"] == "ERROR"
    destination = machine["Logging"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
    assert destination == {"Fn::GetAtt": ["BatchClassificationStateMachineLogGroup", "Arn"]}


def test_every_placeholder_has_a_substitution_and_back(machine: dict[str, Any]) -> None:
    # Given the ASL's ${...} names and the template's DefinitionSubstitutions / Then they are the same set
    used = set(PLACEHOLDER.findall(BATCH_ASL.read_text(encoding="utf-8")))
    assert used == set(machine["DefinitionSubstitutions"])
    assert machine["DefinitionSubstitutions"]["BatchMaxConcurrency"] == {"Ref": "BatchMaxConcurrency"}
    assert machine["DefinitionSubstitutions"]["BatchResultsPrefix"] == "batch-results"


def test_max_concurrency_is_a_bounded_number_parameter(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["BatchMaxConcurrency"]
    assert parameter["Type"] == "Number"
    assert int(parameter["Default"]) == 10
    assert int(parameter["MinValue"]) >= 1 and int(parameter["MaxValue"]) <= 10_000  # Distributed Map's limit


def test_role_invokes_exactly_the_four_functions(statements: dict[str, dict[str, Any]]) -> None:
    invoke = statements["InvokeTheBatchSteps"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == [{"Fn::GetAtt": [name, "Arn"]} for name in BATCH_FUNCTIONS]


def test_role_lists_the_bucket_and_writes_only_the_results_prefix(
    statements: dict[str, dict[str, Any]],
) -> None:
    assert statements["ListTheBatchPrefix"]["Action"] == "s3:ListBucket"
    write = statements["WriteBatchResults"]
    assert "s3:PutObject" in write["Action"] and "s3:DeleteObject" not in write["Action"]
    assert write["Resource"]["Fn::Sub"][0] == "arn:${AWS::Partition}:s3:::${Bucket}/batch-results/*"


def test_role_manages_only_its_own_child_executions(
    machine: dict[str, Any], statements: dict[str, dict[str, Any]]
) -> None:
    # The role names the state machine by its Name: a !Ref to itself would be a circular dependency.
    # The name is built from the stack id's UUID, not the stack name (test_names.py: 80 characters).
    stack_uuid = {"StackUuid": {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}}
    assert machine["Name"] == {"Fn::Sub": ["batch-classification-${StackUuid}", stack_uuid]}
    start = statements["StartChildExecutions"]
    assert start["Action"] == "states:StartExecution"
    assert start["Resource"]["Fn::Sub"][0].endswith(":stateMachine:batch-classification-${StackUuid}")
    assert start["Resource"]["Fn::Sub"][1] == stack_uuid
    manage = statements["ManageChildExecutions"]
    assert sorted(manage["Action"]) == ["states:DescribeExecution", "states:StopExecution"]
    assert manage["Resource"]["Fn::Sub"][0].endswith(":execution:batch-classification-${StackUuid}/*")
    assert manage["Resource"]["Fn::Sub"][1] == stack_uuid


def test_role_publishes_results_reviews_and_notifications_to_this_stacks_resources_only(
    statements: dict[str, dict[str, Any]],
) -> None:
    assert statements["KeepLowConfidenceImagesForReview"]["Resource"] == {
        "Fn::GetAtt": ["ReviewQueue", "Arn"]
    }
    assert statements["PublishResults"]["Resource"] == {"Fn::GetAtt": ["ResultsBus", "Arn"]}
    assert statements["NotifyFailedImages"] == {
        "Sid": "NotifyFailedImages",
        "Effect": "Allow",
        "Action": "sns:Publish",
        "Resource": {"Ref": "NotificationTopic"},
    }
    assert statements["EncryptNotifications"]["Resource"] == {"Fn::GetAtt": ["NotificationKey", "Arn"]}


def test_no_statement_of_the_batch_role_has_a_wildcard_action(statements: dict[str, dict[str, Any]]) -> None:
    for sid, statement in statements.items():
        assert all("*" not in action for action in _listed(statement["Action"])), sid
    wildcard_resources = {sid for sid, s in statements.items() if s["Resource"] == "*"}
    assert wildcard_resources == {"DeliverExecutionLogs"}


def test_summarize_function_has_its_own_role_and_log_group(
    resources: dict[str, Any], project_root: Path
) -> None:
    function = resources["SummarizeBatchFunction"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["SummarizeBatchRole", "Arn"]}
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "SummarizeBatchLogGroup"}
    assert (project_root / function["CodeUri"] / "app.py").exists()
    role = resources["SummarizeBatchRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    read = next(s for s in role if s["Sid"] == "ReadBatchResults")
    assert read["Action"] == "s3:GetObject"
    assert read["Resource"]["Fn::Sub"][0].endswith("/batch-results/*")
    log_group = resources["SummarizeBatchLogGroup"]["Properties"]
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_outputs_name_the_batch_resources(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["BatchStateMachineArn"]["Value"] == {"Ref": "BatchClassificationStateMachine"}
    assert {"BatchResultsLocation", "SummarizeBatchFunctionArn", "SummarizeBatchLogGroupName"} <= set(outputs)


# -- statemachine/batch_classification.asl.json -----------------------------------------------------
def _processor_states(the_map: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(the_map["ItemProcessor"]["States"])


def _all_states(batch_asl: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from batch_asl["States"].items()
    yield from _processor_states(batch_asl["States"]["ClassifyEachImage"]).items()


def test_the_map_is_distributed_over_an_s3_listing(the_map: dict[str, Any]) -> None:
    assert the_map["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert the_map["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    assert the_map["ItemReader"]["Parameters"] == {"Bucket.$": "$.s3_bucket", "Prefix.$": "$.prefix"}
    assert the_map["ItemSelector"]["s3_key.$"] == "$$.Map.Item.Value.Key"
    assert "ItemBatcher" not in the_map  # one object per child: each gets its own outcome


def test_concurrency_and_tolerance_come_from_the_settings_state(batch_asl: dict[str, Any]) -> None:
    settings = batch_asl["States"]["ReadBatchSettings"]
    the_map = batch_asl["States"]["ClassifyEachImage"]
    assert settings["Parameters"]["max_concurrency.$"] == "States.StringToJson('${BatchMaxConcurrency}')"
    assert the_map["MaxConcurrencyPath"] == "$.batch_settings.max_concurrency"
    # Every object must end with a recorded outcome: no failure threshold aborts the others.
    assert settings["Parameters"]["tolerated_failure_percentage"] == 100
    assert the_map["ToleratedFailurePercentagePath"] == "$.batch_settings.tolerated_failure_percentage"


def test_results_go_to_the_results_prefix(the_map: dict[str, Any]) -> None:
    assert the_map["ResultWriter"] == {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "${BatchResultsBucket}", "Prefix": "${BatchResultsPrefix}"},
    }


def test_every_task_has_a_timeout_retries_transient_lambda_errors_and_catches_all(
    batch_asl: dict[str, Any],
) -> None:
    tasks = {name: state for name, state in _all_states(batch_asl) if state["Type"] == "Task"}
    lambda_tasks = {"SerializeImageData", "ClassifyImage", "FilterInferences", "SummarizeBatch"}
    service_tasks = {
        "PublishClassification": "arn:aws:states:::events:putEvents",
        "KeepForReview": "arn:aws:states:::sqs:sendMessage",
        "PublishReviewRequest": "arn:aws:states:::events:putEvents",
        "PublishBatchSummary": "arn:aws:states:::events:putEvents",
        "NotifyFailedImages": "arn:aws:states:::sns:publish",
    }
    assert set(tasks) == lambda_tasks | set(service_tasks)
    for name, state in tasks.items():
        assert state["TimeoutSeconds"] > 0, name
        if name in lambda_tasks:
            assert set(state["Retry"][0]["ErrorEquals"]) >= TRANSIENT_LAMBDA_ERRORS, name
        else:
            assert state["Resource"] == service_tasks[name], name
            assert state["Retry"] and state["ResultPath"] is None, name  # the image's data passes on
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        assert all(isinstance(r["BackoffRate"], float) for r in state["Retry"]), name


def test_every_path_of_the_processor_ends_with_an_outcome(the_map: dict[str, Any]) -> None:
    # Given the processor's states / Then every end state is a Pass building the outcome object
    states = _processor_states(the_map)
    ends = {name: state for name, state in states.items() if state.get("End")}
    assert set(ends) == {"NotAnImageKey", "Classified", "LowConfidence", "NotClassified"}
    for name, state in ends.items():
        assert state["Type"] == "Pass", name
        assert {key.removesuffix(".$") for key in state["Parameters"]} == OUTCOME_FIELDS, name
    assert not any(state["Type"] in ("Fail", "Succeed") for state in states.values())
    # And every step's catch-all leads to an outcome, not to a failure of the child execution
    for name in ("SerializeImageData", "FilterInferences"):
        assert states[name]["Catch"][-1]["Next"] == "NotClassified", name
    # (ClassifyImage's through SetTheImageAside: its Catch put the error in the image's place)
    assert states["ClassifyImage"]["Catch"][-1]["Next"] == "SetTheImageAside"
    assert states["SetTheImageAside"]["Next"] == "NotClassified"
    assert states["PublishClassification"]["Catch"][-1]["Next"] == "NotClassified"
    assert states["FilterInferences"]["Catch"][0] == {
        "ErrorEquals": ["ThresholdConfidenceNotMetError"],
        "ResultPath": "$.error",
        "Next": "KeepForReview",
    }


def test_every_transition_names_a_state_of_its_machine(
    batch_asl: dict[str, Any], the_map: dict[str, Any]
) -> None:
    for machine in (batch_asl, the_map["ItemProcessor"]):
        names = set(machine["States"])
        assert machine["StartAt"] in names
        for name, state in machine["States"].items():
            targets = [state.get("Next"), state.get("Default")]
            targets += [c["Next"] for c in state.get("Catch", [])] + [
                c["Next"] for c in state.get("Choices", [])
            ]
            assert {t for t in targets if t} <= names, name


def test_states_errors_are_not_re_raised_by_name(batch_asl: dict[str, Any]) -> None:
    choice = batch_asl["States"]["NameTheBatchFailure"]
    assert choice["Choices"][0]["StringMatches"] == "States.*"
    assert batch_asl["States"]["BatchStepFailed"]["Error"] == "BatchStepFailed"


def test_statelint_finds_no_problem(tmp_path: Path) -> None:
    beside_python = Path(sys.executable).with_name("statelint")
    statelint = str(beside_python) if beside_python.exists() else shutil.which("statelint")
    if statelint is None:
        pytest.skip("statelint is not installed (pip install -e '.[dev]')")
    text = BATCH_ASL.read_text(encoding="utf-8")
    definition = PLACEHOLDER.sub(
        lambda m: f"arn:aws:lambda:us-east-1:123456789012:function:{m.group(1)}", text
    )
    path = tmp_path / "batch_classification.asl.json"
    path.write_text(definition, encoding="utf-8")
    result = subprocess.run([statelint, str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_harness_reads_both_state_machines() -> None:
    from harness.local.template import read_stack
    from harness.ops.execution import BATCH_STATE_MACHINE_NAME, MAIN_STATE_MACHINE_NAME

    stack = read_stack()
    assert set(stack.state_machines) == {MAIN_STATE_MACHINE_NAME, BATCH_STATE_MACHINE_NAME}
    assert stack.state_machine is stack.state_machines[MAIN_STATE_MACHINE_NAME]
    batch = stack.state_machines[BATCH_STATE_MACHINE_NAME]
    assert batch.substitutions["BatchMaxConcurrency"] == "10"
    assert batch.substitutions["BatchResultsBucket"] == stack.bucket_name
    json.loads(batch.definition())  # every placeholder resolved to valid JSON
    assert "${" not in batch.definition()
