"""Operations in template.yaml: the CloudWatch dashboard, the alarms and who lets them publish."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from model.sagemaker_jobs.endpoint import VARIANT_NAME
from tests.helpers import props_of

ALARMS = {
    "FailedExecutionsAlarm": "failed-executions",
    "LowConfidenceRateAlarm": "low-confidence-rate",
    "EndpointErrorsAlarm": "endpoint-5xx-errors",
}
FIVE_MINUTES = 300
ONE_DAY = 24 * 3600
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "scones-test",
}
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:ImageClassificationStateMachine"
SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]+)\}")
EMF_METRIC = re.compile(r"""(?:add_metric|single_metric)\(\s*name="(\w+)\"""")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def dummy_values(template: dict[str, Any]) -> dict[str, str]:
    """What !Sub would put in place of each variable, with made-up values of the right shape."""
    values = dict(PSEUDO)
    for name, spec in template["Parameters"].items():
        # Numbers land in the JSON unquoted, so their stand-in must be a number too.
        values[name] = str(spec["Default"]) if spec["Type"] == "Number" else f"{name.lower()}-value"
    for logical_id in template["Resources"]:
        values[logical_id] = f"{logical_id}-ref"
        values[f"{logical_id}.Arn"] = f"arn:aws:test:us-east-1:123456789012:{logical_id}"
    values["ImageClassificationStateMachine"] = STATE_MACHINE_ARN
    return values


def substitute(text: str, values: dict[str, str]) -> str:
    unknown = sorted({name for name in SUB_VARIABLE.findall(text) if name not in values})
    assert not unknown, f"!Sub variables that are neither parameters nor resources: {unknown}"
    return SUB_VARIABLE.sub(lambda match: values[match.group(1)], text).replace("${!", "${")


def metric_rows(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """(namespace, metric, dimensions, options) of each metric of a widget; expressions are left out."""
    rows = []
    for row in widget["properties"]["metrics"]:
        options = row[-1] if isinstance(row[-1], dict) else {}
        names = [item for item in row if not isinstance(item, dict)]
        if not names:
            continue
        namespace, metric, *pairs = names
        assert len(pairs) % 2 == 0, row
        rows.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True)), options))
    return rows


@pytest.fixture(scope="module")
def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    body = props_of(template["Resources"], "OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    parsed: dict[str, Any] = json.loads(substitute(body, dummy_values(template)))
    return parsed


@pytest.fixture(scope="module")
def all_metrics(dashboard: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    return [
        row for widget in dashboard["widgets"] if widget["type"] == "metric" for row in metric_rows(widget)
    ]


@pytest.fixture(scope="module")
def emf(globals_function: dict[str, Any]) -> tuple[str, str]:
    variables = globals_function["Environment"]["Variables"]
    return variables["POWERTOOLS_METRICS_NAMESPACE"], variables["POWERTOOLS_SERVICE_NAME"]


# --- dashboard ------------------------------------------------------------------------------------


def test_dashboard_body_is_json_once_substituted(dashboard: dict[str, Any]) -> None:
    # Given the DashboardBody with every !Sub variable replaced by a dummy / When it is parsed
    # Then it is JSON whose widgets fit the dashboard's 24 columns and all carry the stack's region
    assert dashboard["widgets"]
    for widget in dashboard["widgets"]:
        assert widget["x"] + widget["width"] <= 24, widget["properties"].get("title")
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == PSEUDO["AWS::Region"]


def test_dashboard_shows_every_execution_outcome(all_metrics: list[Any]) -> None:
    # Given the dashboard's metrics / When the Step Functions ones are read
    states = {(metric, dims["StateMachineArn"]) for ns, metric, dims, _ in all_metrics if ns == "AWS/States"}
    # Then started, succeeded, failed and timed-out executions of this state machine are there
    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut"):
        assert (metric, STATE_MACHINE_ARN) in states


def test_dashboard_shows_execution_duration_percentiles(all_metrics: list[Any]) -> None:
    # Given the ExecutionTime metrics / When their statistics are read / Then p50, p90 and max are shown
    stats = {
        options["stat"]
        for ns, metric, dims, options in all_metrics
        if (ns, metric) == ("AWS/States", "ExecutionTime") and dims == {"StateMachineArn": STATE_MACHINE_ARN}
    }
    assert stats == {"p50", "p90", "Maximum"}


def test_dashboard_low_confidence_rate_is_metric_math_of_the_filter_metrics(
    dashboard: dict[str, Any], emf: tuple[str, str]
) -> None:
    # Given the widget with a math expression
    (widget,) = [
        w
        for w in dashboard["widgets"]
        if any(
            isinstance(row[0], dict) and "expression" in row[0] for row in w["properties"].get("metrics", [])
        )
    ]
    rows = widget["properties"]["metrics"]
    expression = next(row[0]["expression"] for row in rows if isinstance(row[0], dict))
    ids = {options["id"]: (ns, metric, dims) for ns, metric, dims, options in metric_rows(widget)}
    namespace, service = emf
    # When its expression and inputs are read
    # Then it is LowConfidenceImages / (ImagesAccepted + LowConfidenceImages), with the service dimension
    assert expression.replace(" ", "") == "low/(accepted+low)"
    assert ids["low"] == (namespace, "LowConfidenceImages", {"service": service})
    assert ids["accepted"] == (namespace, "ImagesAccepted", {"service": service})
    # And the alarm's threshold is drawn on it
    (line,) = widget["properties"]["annotations"]["horizontal"]
    assert line["value"] == 0.2


def test_dashboard_counts_images_per_label(
    all_metrics: list[Any], resources: dict[str, Any], emf: tuple[str, str]
) -> None:
    # Given the labels the classify function reports (CLASS_NAMES)
    labels = props_of(resources, "ClassifyImageFunction")["Environment"]["Variables"]["CLASS_NAMES"].split(
        ","
    )
    namespace, service = emf
    # When the ImagesClassified metrics are read / Then there is one per label, as the function emits it
    found = [dims for ns, metric, dims, _ in all_metrics if (ns, metric) == (namespace, "ImagesClassified")]
    assert sorted(found, key=lambda d: d["label"]) == [
        {"label": label, "service": service} for label in labels
    ]


def test_dashboard_shows_every_metric_the_workflow_functions_emit(
    all_metrics: list[Any], project_root: Path
) -> None:
    # Given every EMF metric name in every function's app.py, and the state machines' PutMetricData
    emitted = {
        name
        for app in sorted((project_root / "functions").glob("*/app.py"))
        for name in EMF_METRIC.findall(app.read_text(encoding="utf-8"))
    } | {
        name
        for asl in sorted((project_root / "statemachine").glob("*.asl.json"))
        for name in re.findall(r'"MetricName": "(\w+)"', asl.read_text(encoding="utf-8"))
    }
    # When the dashboard's SconesUnlimited metrics are read
    shown = {metric for ns, metric, _, _ in all_metrics if ns == "SconesUnlimited"}
    # Then none is missing but ImageBytes, a size distribution rather than a health signal
    assert {"ImagesClassified", "InferenceLatency", "LowConfidenceImages", "ImagesAccepted"} <= emitted
    assert {"DeliveriesReleased", "BatchImagesFailed", "LowConfidenceExecutions"} <= emitted
    assert emitted - {"ImageBytes"} <= shown


def test_dashboard_shows_the_endpoint(all_metrics: list[Any], template: dict[str, Any]) -> None:
    # Given the SageMaker metrics of the dashboard
    endpoint = dummy_values(template)["EndpointName"]
    sagemaker = {
        (metric, options.get("stat")) for ns, metric, dims, options in all_metrics if ns == "AWS/SageMaker"
    }
    dimensions = [dims for ns, _, dims, _ in all_metrics if ns == "AWS/SageMaker"]
    # When they are read / Then invocations, both latencies and both error classes of the endpoint's
    # only variant (the one `scones deploy` creates) are shown
    assert all(dims == {"EndpointName": endpoint, "VariantName": VARIANT_NAME} for dims in dimensions)
    names = {metric for metric, _ in sagemaker}
    assert {
        "Invocations",
        "ModelLatency",
        "OverheadLatency",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
    } <= names


def test_dashboard_shows_errors_throttles_and_duration_of_each_function(
    template: dict[str, Any], all_metrics: list[Any]
) -> None:
    # Given every function of the template (a new one must bring its rows) and the Lambda metrics
    functions = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 5
    # When they are grouped per function
    per_function: dict[str, set[str]] = {}
    for ns, metric, dims, _ in all_metrics:
        if ns == "AWS/Lambda":
            per_function.setdefault(dims["FunctionName"], set()).add(metric)
    # Then each function has its errors, throttles and duration
    assert per_function == {f"{lid}-ref": {"Errors", "Throttles", "Duration"} for lid in functions}


def test_dashboard_lists_the_alarms(dashboard: dict[str, Any]) -> None:
    # Given the alarm widget / When its alarms are read / Then it shows the three alarms
    (widget,) = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    assert widget["properties"]["alarms"] == [f"arn:aws:test:us-east-1:123456789012:{lid}" for lid in ALARMS]


# --- alarms ---------------------------------------------------------------------------------------


def alarm_arn(suffix: str) -> dict[str, str]:
    prefix = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}"
    return {"Fn::Sub": f"{prefix}-{suffix}"}


def test_the_template_has_exactly_these_alarms(resources: dict[str, Any]) -> None:
    # Given the resources / When the alarms are listed / Then they are the three the policies know of
    assert {lid for lid, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"} == set(ALARMS)


@pytest.mark.parametrize(("logical_id", "suffix"), ALARMS.items())
def test_each_alarm_notifies_the_topic(resources: dict[str, Any], logical_id: str, suffix: str) -> None:
    # Given an alarm / When its actions and name are read
    alarm = props_of(resources, logical_id)
    # Then it publishes to the notification topic when it goes off and when it clears, its name is
    # the one the key policy allows, and a period without data does not raise it
    assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]
    assert alarm["OKActions"] == [{"Ref": "NotificationTopic"}]
    assert alarm.get("ActionsEnabled", True) is True
    assert alarm["AlarmName"] == {"Fn::Sub": f"${{AWS::StackName}}-{suffix}"}
    assert alarm["TreatMissingData"] == "notBreaching"


def test_key_policy_lets_only_the_stacks_alarms_use_the_key(resources: dict[str, Any]) -> None:
    # Given the key policy's statement for CloudWatch
    statements = as_list(props_of(resources, "NotificationKey")["KeyPolicy"]["Statement"])
    (statement,) = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    # When it is read
    # Then it grants what the SNS developer guide lists for AWS event sources of encrypted topics, for
    # this account's three alarms only (ARNs built from the names: !GetAtt would be a circular reference)
    assert statement["Sid"] == "AllowTheAlarmsToPublishToTheTopic"
    assert statement["Effect"] == "Allow"
    assert sorted(as_list(statement["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == [alarm_arn(s) for s in ALARMS.values()]


def test_topic_policy_lets_only_the_stacks_alarms_publish(resources: dict[str, Any]) -> None:
    # Given the topic policy's statement for CloudWatch
    statements = as_list(props_of(resources, "NotificationTopicPolicy")["PolicyDocument"]["Statement"])
    (statement,) = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    # When it is read / Then CloudWatch may publish to this topic for the three alarms only
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == {"Ref": "NotificationTopic"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == [
        {"Fn::GetAtt": [lid, "Arn"]} for lid in ALARMS
    ]


def metric_math(alarm: dict[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
    """The alarm's one returned expression and its inputs by id."""
    (returned,) = [m for m in alarm["Metrics"] if m.get("ReturnData", True)]
    inputs = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert all(m.get("ReturnData") is False for m in alarm["Metrics"] if "MetricStat" in m)
    assert set(re.findall(r"[a-z][A-Za-z0-9_]*", returned["Expression"])) == set(inputs)
    for stat in inputs.values():
        assert stat["Period"] == FIVE_MINUTES and stat["Stat"] == "Sum"
    return returned["Expression"], inputs


def dimensions(stat: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}


def test_low_confidence_alarm_is_a_rate_over_n_periods(
    resources: dict[str, Any], emf: tuple[str, str]
) -> None:
    # Given the low-confidence alarm
    alarm = props_of(resources, "LowConfidenceRateAlarm")
    expression, inputs = metric_math(alarm)
    namespace, service = emf
    # When it is read
    # Then it is LowConfidenceImages / (ImagesAccepted + LowConfidenceImages) above LowConfidenceAlarmRate
    # in LowConfidenceAlarmPeriods periods out of as many
    assert expression.replace(" ", "") == "low/(accepted+low)"
    assert {key: stat["Metric"]["MetricName"] for key, stat in inputs.items()} == {
        "low": "LowConfidenceImages",
        "accepted": "ImagesAccepted",
    }
    assert all(stat["Metric"]["Namespace"] == namespace for stat in inputs.values())
    assert all(dimensions(stat) == {"service": service} for stat in inputs.values())
    assert alarm["Threshold"] == {"Ref": "LowConfidenceAlarmRate"}
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == {"Ref": "LowConfidenceAlarmPeriods"}


def test_endpoint_alarm_watches_5xx_errors_of_the_endpoint(resources: dict[str, Any]) -> None:
    # Given the endpoint alarm / When its metric is read
    alarm = props_of(resources, "EndpointErrorsAlarm")
    # Then any 5XX error of the configured endpoint's variant in 5 minutes sets it off
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SageMaker", "Invocation5XXErrors")
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "EndpointName": {"Ref": "EndpointName"},
        "VariantName": VARIANT_NAME,
    }
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", FIVE_MINUTES, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


# --- parameters and outputs -----------------------------------------------------------------------


def test_low_confidence_rate_parameter_is_a_share(template: dict[str, Any]) -> None:
    # Given LowConfidenceAlarmRate / When its bounds are read / Then it is a number in [0, 1], default 0.2
    parameter = template["Parameters"]["LowConfidenceAlarmRate"]
    assert parameter["Type"] == "Number"
    assert (parameter["MinValue"], parameter["MaxValue"]) == (0, 1)
    assert float(parameter["Default"]) == 0.2


def test_alarm_count_parameters_have_sane_bounds(template: dict[str, Any]) -> None:
    # Given the other alarm parameters / When their bounds are read
    failed = template["Parameters"]["FailedExecutionsAlarmThreshold"]
    periods = template["Parameters"]["LowConfidenceAlarmPeriods"]
    # Then a threshold is at least one failure, and the periods stay within CloudWatch's one-day
    # evaluation range
    assert failed["Type"] == periods["Type"] == "Number"
    assert failed["MinValue"] == 1 and int(failed["Default"]) >= 1
    assert periods["MinValue"] == 1
    assert periods["MaxValue"] * FIVE_MINUTES <= ONE_DAY
    assert periods["MinValue"] <= int(periods["Default"]) <= periods["MaxValue"]


def test_alarm_parameters_are_in_the_console_groups(template: dict[str, Any]) -> None:
    # Given the parameter groups / When they are read / Then the alarm parameters have a group
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = {name for group in groups for name in group["Parameters"]}
    assert {
        "FailedExecutionsAlarmThreshold",
        "LowConfidenceAlarmRate",
        "LowConfidenceAlarmPeriods",
    } <= grouped


def test_outputs_name_the_dashboard_and_the_alarms(template: dict[str, Any]) -> None:
    # Given the outputs / When the operations ones are read
    outputs = template["Outputs"]
    # Then the dashboard (name and console link) and each alarm's name are there
    assert outputs["OperationsDashboardName"]["Value"] == {"Ref": "OperationsDashboard"}
    url = outputs["OperationsDashboardUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${AWS::Region}.console.aws.amazon.com/cloudwatch/")
    assert url.endswith("#dashboards/dashboard/${OperationsDashboard}")
    for logical_id in ALARMS:
        assert outputs[f"{logical_id}Name"]["Value"] == {"Ref": logical_id}


def test_every_parameter_is_in_exactly_one_console_group(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])
