"""Assertions on template.yaml: what SAM deploys, one test per constraint, no network."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PROJECT_ROOT, props_of

FUNCTIONS = {
    # logical id: (code directory, memory MB, timeout s)
    "SerializeImageDataFunction": ("serialize_image_data", 512, 30),
    "ClassifyImageFunction": ("classify_image", 256, 70),
    "FilterInferencesFunction": ("filter_inferences", 128, 10),
    "ReleaseDeliveryFunction": ("release_delivery", 128, 10),
}
LOG_GROUPS = {
    "SerializeImageDataFunction": "SerializeImageDataLogGroup",
    "ClassifyImageFunction": "ClassifyImageLogGroup",
    "FilterInferencesFunction": "FilterInferencesLogGroup",
    "ReleaseDeliveryFunction": "ReleaseDeliveryLogGroup",
}
# The values CloudWatch Logs accepts for RetentionInDays.
# fmt: off
CLOUDWATCH_RETENTION_DAYS = {
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
}
# fmt: on
ENDPOINT_ARN = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/${EndpointName}"
IMAGE_BUCKET_NAME = {"Fn::If": ["CreateImageBucket", {"Ref": "ImageBucket"}, {"Ref": "ExistingBucketName"}]}
# CloudWatch Logs' log-delivery APIs, which Step Functions needs for logging and which take no
# resource narrower than "*".
LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
XRAY_WRITE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
PINNED_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?==[A-Za-z0-9.+!-]+$")
# Import name -> distribution, for the third-party modules the functions use.
DISTRIBUTIONS = {
    "aws_lambda_powertools": "aws-lambda-powertools",
    "aws_xray_sdk": "aws-lambda-powertools",
    "pydantic": "pydantic",
    "PIL": "pillow",
    "boto3": "boto3",
    "botocore": "botocore",
}
# What the python3.13 Lambda runtime provides without packaging.
RUNTIME_PROVIDED = {"boto3", "botocore"}


# --- helpers --------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def effective(globals_function: dict[str, Any], props: dict[str, Any], key: str) -> Any:
    """The value SAM deploys for `key`: the function's own, else Globals'; maps are merged."""
    own, shared = props.get(key), globals_function.get(key)
    if isinstance(own, dict) and isinstance(shared, dict):
        return {**shared, **own}
    return shared if own is None else own


def statements(policies: list[Any]) -> Iterator[dict[str, Any]]:
    """Inline statements of a SAM `Policies` list; policy templates are checked separately."""
    for policy in policies:
        if isinstance(policy, dict) and "Statement" in policy:
            yield from as_list(policy["Statement"])


def environment(globals_function: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    shared = globals_function.get("Environment", {}).get("Variables", {})
    return {**shared, **props.get("Environment", {}).get("Variables", {})}


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[\[=<>~!]", line, maxsplit=1)[0].lower())
    return names


def third_party_imports(entry: Path, shared_root: Path) -> set[str]:
    """Top-level modules imported by `entry` and, transitively, by the scones_common modules it uses."""
    found: set[str] = set()
    seen: set[Path] = set()
    pending = [entry]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top == "scones_common":
                    target = shared_root.joinpath(*module.split("."))
                    for candidate in (target.with_suffix(".py"), target / "__init__.py"):
                        if candidate.exists():
                            pending.append(candidate)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.add(top)
    return found


# --- the loader -----------------------------------------------------------------------------------


def test_loader_reads_cloudformation_short_tags_as_long_form(load_cfn_yaml: Callable[[str], Any]) -> None:
    # Given YAML with the short tags the template uses
    text = """
a: !Ref X
b: !GetAtt R.Arn
c: !Sub 'x-${Y}'
d: !If [C, !Ref A, !Ref B]
e: !Equals [!Ref P, '']
"""
    # When it is loaded
    data = load_cfn_yaml(text)
    # Then each tag reads as the JSON form CloudFormation documents
    assert data == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["R", "Arn"]},
        "c": {"Fn::Sub": "x-${Y}"},
        "d": {"Fn::If": ["C", {"Ref": "A"}, {"Ref": "B"}]},
        "e": {"Fn::Equals": [{"Ref": "P"}, ""]},
    }


# --- transform and globals ------------------------------------------------------------------------


def test_template_is_a_sam_template(template: dict[str, Any]) -> None:
    # Given the template / When its transform is read / Then SAM expands it
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_functions_run_python_313_on_arm64_with_active_tracing(
    resources: dict[str, Any], globals_function: dict[str, Any]
) -> None:
    # Given the image workflow's three functions (summarize_batch: test_batch_template.py)
    for logical_id in FUNCTIONS:
        props = props_of(resources, logical_id)
        # When Globals and the function's own properties are merged
        # Then each runs python3.13 on Graviton with X-Ray tracing
        assert effective(globals_function, props, "Runtime") == "python3.13", logical_id
        assert effective(globals_function, props, "Architectures") == ["arm64"], logical_id
        assert effective(globals_function, props, "Tracing") == "Active", logical_id


def test_functions_use_the_common_layer(resources: dict[str, Any], globals_function: dict[str, Any]) -> None:
    # Given the image workflow's three functions (summarize_batch: test_batch_template.py)
    for logical_id in FUNCTIONS:
        # When their layers are read
        layers = effective(globals_function, props_of(resources, logical_id), "Layers")
        # Then the shared package comes from CommonLayer
        assert layers == [{"Ref": "CommonLayer"}], logical_id


def test_common_layer_is_built_for_python_313_on_arm64(resources: dict[str, Any]) -> None:
    # Given the layer resource
    layer = resources["CommonLayer"]
    # When its type, content and build metadata are read
    # Then SAM builds layers/common/ with pip for the functions' runtime and architecture
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/common/"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_globals_set_the_powertools_environment(globals_function: dict[str, Any]) -> None:
    # Given the Globals environment
    variables = globals_function["Environment"]["Variables"]
    # When the names Powertools and the functions read are looked up
    # Then all of them are set, and IMAGE_BUCKET follows the bucket condition
    assert variables["POWERTOOLS_SERVICE_NAME"] == "scones-image-classification"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "SconesUnlimited"
    assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert variables["IMAGE_BUCKET"] == IMAGE_BUCKET_NAME


# --- functions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_function_code_and_handler(resources: dict[str, Any], project_root: Path, logical_id: str) -> None:
    # Given a function resource
    code_dir, _, _ = FUNCTIONS[logical_id]
    props = props_of(resources, logical_id)
    # When its code location and handler are read
    # Then they name functions/<name>/app.py::lambda_handler, and that folder exists
    assert resources[logical_id]["Type"] == "AWS::Serverless::Function"
    assert props["CodeUri"] == f"functions/{code_dir}/"
    assert props["Handler"] == "app.lambda_handler"
    assert (project_root / "functions" / code_dir / "requirements.txt").is_file()


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_function_memory_and_timeout(
    resources: dict[str, Any], globals_function: dict[str, Any], logical_id: str
) -> None:
    # Given a function resource
    _, memory, timeout = FUNCTIONS[logical_id]
    props = props_of(resources, logical_id)
    # When its memory and timeout are read
    # Then they are the sizes chosen for its work
    assert effective(globals_function, props, "MemorySize") == memory
    assert effective(globals_function, props, "Timeout") == timeout


def test_classify_outlasts_sagemakers_60_second_model_timeout(resources: dict[str, Any]) -> None:
    # Given the classify function / When its timeout is read
    timeout = props_of(resources, "ClassifyImageFunction")["Timeout"]
    # Then a model that takes SageMaker's full 60 s fails in SageMaker, not as a Lambda timeout
    assert timeout > 60


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_function_logs_json_to_its_own_log_group(
    resources: dict[str, Any], globals_function: dict[str, Any], logical_id: str
) -> None:
    # Given a function resource
    props = props_of(resources, logical_id)
    # When its logging configuration is merged with Globals
    logging_config = effective(globals_function, props, "LoggingConfig")
    # Then it logs JSON to the log group created for it
    assert logging_config["LogFormat"] == "JSON"
    assert logging_config["LogGroup"] == {"Ref": LOG_GROUPS[logical_id]}


@pytest.mark.parametrize("log_group", [*LOG_GROUPS.values(), "ImageClassificationStateMachineLogGroup"])
def test_log_group_keeps_logs_for_the_retention_parameter(resources: dict[str, Any], log_group: str) -> None:
    # Given a log group of the stack
    resource = resources[log_group]
    # When its retention is read
    # Then it is the LogRetentionDays parameter, and the group goes away with the stack on purpose
    assert resource["Type"] == "AWS::Logs::LogGroup"
    assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert resource["DeletionPolicy"] == "Delete"


def test_log_groups_are_not_shared(resources: dict[str, Any]) -> None:
    # Given the functions' and the state machine's log groups
    groups = [*LOG_GROUPS.values(), "ImageClassificationStateMachineLogGroup"]
    # When their names are read
    names = [json.dumps(resources[group]["Properties"]["LogGroupName"], sort_keys=True) for group in groups]
    # Then each writes somewhere of its own
    assert len(set(names)) == len(names)


def test_serialize_environment(resources: dict[str, Any], globals_function: dict[str, Any]) -> None:
    # Given the serialize function / When its environment is read
    variables = environment(globals_function, props_of(resources, "SerializeImageDataFunction"))
    # Then it caps images at 5 MiB and 50 megapixels
    assert variables["MAX_IMAGE_BYTES"] == "5242880"
    assert variables["MAX_IMAGE_PIXELS"] == "50000000"


def test_classify_environment(resources: dict[str, Any], globals_function: dict[str, Any]) -> None:
    # Given the classify function / When its environment is read
    variables = environment(globals_function, props_of(resources, "ClassifyImageFunction"))
    # Then the endpoint comes from the parameter and the classes are in the model's order
    assert variables["ENDPOINT_NAME"] == {"Ref": "EndpointName"}
    assert variables["CLASS_NAMES"] == "bicycle,motorcycle"


def test_filter_environment(resources: dict[str, Any], globals_function: dict[str, Any]) -> None:
    # Given the filter function / When its environment is read
    variables = environment(globals_function, props_of(resources, "FilterInferencesFunction"))
    # Then the threshold comes from the parameter
    assert variables["CONFIDENCE_THRESHOLD"] == {"Ref": "ConfidenceThreshold"}


@pytest.mark.parametrize(
    ("logical_id", "settings_class"),
    [
        ("SerializeImageDataFunction", "SerializeSettings"),
        ("ClassifyImageFunction", "ClassifySettings"),
        ("FilterInferencesFunction", "FilterSettings"),
    ],
)
def test_function_environment_matches_its_settings_model(
    resources: dict[str, Any], globals_function: dict[str, Any], logical_id: str, settings_class: str
) -> None:
    # Given the function's settings model (what it reads at cold start)
    settings = pytest.importorskip("scones_common.settings")
    fields = getattr(settings, settings_class).model_fields
    variables = environment(globals_function, props_of(resources, logical_id))
    # When the template's variables are compared with the model's fields
    own_variables = props_of(resources, logical_id).get("Environment", {}).get("Variables", {})
    own = {name.lower() for name in own_variables}
    required = {name for name, field in fields.items() if field.is_required()}
    # Then every variable set for the function is read by it, and every required field is set
    assert own <= set(fields), f"{logical_id} sets variables its settings ignore: {sorted(own - set(fields))}"
    assert required <= {name.lower() for name in variables}, f"{logical_id} misses {sorted(required)}"


# --- IAM ------------------------------------------------------------------------------------------


def role_of(resources: dict[str, Any], function_id: str) -> str:
    """The logical id of the hand-written role a function runs with."""
    role = props_of(resources, function_id)["Role"]
    assert role == {"Fn::GetAtt": [role["Fn::GetAtt"][0], "Arn"]}, f"{function_id} has no role of its own"
    return str(role["Fn::GetAtt"][0])


def role_statements(resources: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in props_of(resources, role_id).get("Policies", [])
        for statement in as_list(policy["PolicyDocument"]["Statement"])
    ]


def _all_allow_statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Inline Allow statements of SAM resources' Policies and of hand-written roles."""
    for logical_id, resource in resources.items():
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            found = list(statements(resource["Properties"].get("Policies", [])))
        elif resource["Type"] == "AWS::IAM::Role":
            found = role_statements(resources, logical_id)
        else:
            continue
        for statement in found:
            if statement["Effect"] == "Allow":
                yield logical_id, statement


def test_no_allow_statement_grants_a_wildcard_action(resources: dict[str, Any]) -> None:
    # Given every inline Allow statement of the functions' roles and the state machine
    for logical_id, statement in _all_allow_statements(resources):
        # When its actions are read
        # Then none is "*" or "service:*"
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{logical_id} allows {action}"


def test_only_log_delivery_and_traces_are_granted_on_every_resource(resources: dict[str, Any]) -> None:
    # Given every inline Allow statement
    for logical_id, statement in _all_allow_statements(resources):
        # When it applies to Resource "*"
        if "*" in as_list(statement["Resource"]):
            actions = set(as_list(statement["Action"]))
            # Then it is the state machine's log delivery or a function's X-Ray writes: AWS allows
            # nothing narrower for either
            if logical_id in ("ImageClassificationStateMachine", "BatchClassificationStateMachine"):
                # or PutMetricData (no resource-level permissions), in the project's namespace only
                if actions == {"cloudwatch:PutMetricData"}:
                    assert statement["Condition"] == {
                        "StringEquals": {"cloudwatch:namespace": "SconesUnlimited"}
                    }
                    continue
                assert actions <= LOG_DELIVERY_ACTIONS
            else:
                assert actions == XRAY_WRITE_ACTIONS, f"{logical_id} grants {sorted(actions)} on *"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_function_runs_with_a_role_of_its_own(resources: dict[str, Any], logical_id: str) -> None:
    # Given a function / When its role is read
    role_id = role_of(resources, logical_id)
    role = resources[role_id]
    # Then it is a role written in the template for this function only, which Lambda alone may assume,
    # without SAM's AWSLambdaBasicExecutionRole (logs on every log group) or any other managed policy
    assert role["Type"] == "AWS::IAM::Role"
    assert not props_of(resources, logical_id).get("Policies")
    assert not role["Properties"].get("ManagedPolicyArns")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    others = [lid for lid in FUNCTIONS if lid != logical_id]
    assert all(role_of(resources, other) != role_id for other in others)


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_function_may_write_only_its_own_log_streams_and_traces(
    resources: dict[str, Any], logical_id: str
) -> None:
    # Given a function's role
    found = {s["Sid"]: s for s in role_statements(resources, role_of(resources, logical_id))}
    # When its logging and tracing statements are read
    logs, traces = found["WriteOwnLogStreams"], found["WriteTraces"]
    # Then it writes streams of its own log group only (no CreateLogGroup: the stack made the group)
    assert set(as_list(logs["Action"])) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert logs["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        f"${{{LOG_GROUPS[logical_id]}}}:log-stream:*"
    }
    # And it sends traces, which X-Ray allows on "*" only
    assert set(as_list(traces["Action"])) == XRAY_WRITE_ACTIONS
    assert traces["Resource"] == "*"


def _own_grants(resources: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    """A function role's statements beyond logs and traces."""
    return [
        s
        for s in role_statements(resources, role_of(resources, function_id))
        if s["Sid"] not in ("WriteOwnLogStreams", "WriteTraces")
    ]


def test_serialize_may_only_read_the_image_bucket(resources: dict[str, Any]) -> None:
    # Given the serialize function's own statements
    found = _own_grants(resources, "SerializeImageDataFunction")
    # When actions are paired with resources
    granted = [(action, s["Resource"]) for s in found for action in as_list(s["Action"])]
    # Then it may get objects of the image bucket, list that bucket (so a missing key is a 404), and
    # keep its idempotency records in its own table
    bucket = {"Bucket": IMAGE_BUCKET_NAME}
    table = {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    assert sorted(granted, key=str) == sorted(
        [
            ("s3:GetObject", {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${Bucket}/*", bucket]}),
            ("s3:ListBucket", {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${Bucket}", bucket]}),
            *(
                (action, table)
                for action in (
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                )
            ),
        ],
        key=str,
    )


def test_classify_may_only_invoke_its_endpoint(resources: dict[str, Any]) -> None:
    # Given the classify function's own statements
    found = _own_grants(resources, "ClassifyImageFunction")
    # When actions and resources are read
    # Then the only grant is InvokeEndpoint on the named endpoint's ARN
    assert len(found) == 1
    assert as_list(found[0]["Action"]) == ["sagemaker:InvokeEndpoint"]
    assert found[0]["Resource"] == {"Fn::Sub": ENDPOINT_ARN}


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("scones-image-classifier", True),
        ("a", True),
        ("model-2024-01-01", True),
        ("Scones-Classifier", False),  # the ARN would be lower case: IAM would deny every call
        ("-leading-hyphen", False),
        ("trailing-hyphen-", False),
        ("under_score", False),
        ("x" * 64, False),
    ],
)
def test_endpoint_name_must_match_its_lower_case_arn(
    template: dict[str, Any], name: str, accepted: bool
) -> None:
    # Given the EndpointName parameter's pattern
    parameter = template["Parameters"]["EndpointName"]
    # When a name is checked against it (CloudFormation matches the whole value)
    matches = (
        re.fullmatch(parameter["AllowedPattern"], name) is not None and len(name) <= parameter["MaxLength"]
    )
    # Then only names whose ARN spells them the same way are accepted
    assert matches is accepted


def test_filter_has_no_permissions_of_its_own(resources: dict[str, Any]) -> None:
    # Given the filter function's role / When its statements beyond logs and traces are read
    # Then there are none
    assert _own_grants(resources, "FilterInferencesFunction") == []


def test_state_machine_may_invoke_exactly_its_functions(resources: dict[str, Any]) -> None:
    # Given the state machine's policies
    policies = props_of(resources, "ImageClassificationStateMachine")["Policies"]
    found = list(statements(policies))
    # When the statements granting lambda actions are collected
    invoking = [s for s in found if any(a.startswith("lambda:") for a in as_list(s["Action"]))]
    # Then one statement grants InvokeFunction on its functions' own ARNs, nothing wider
    # (SAM's LambdaInvokePolicy would grant "function:<name>*"), and no policy template is used
    assert not [p for p in policies if not (isinstance(p, dict) and "Statement" in p)]
    assert len(invoking) == 1
    assert as_list(invoking[0]["Action"]) == ["lambda:InvokeFunction"]
    assert sorted(as_list(invoking[0]["Resource"]), key=str) == sorted(
        ({"Fn::GetAtt": [lid, "Arn"]} for lid in FUNCTIONS), key=str
    )


def test_state_machine_may_only_send_to_the_review_queue(resources: dict[str, Any]) -> None:
    # Given the state machine's statements
    found = list(statements(props_of(resources, "ImageClassificationStateMachine")["Policies"]))
    # When the SQS grants are collected
    sqs = [s for s in found if any(a.startswith("sqs:") for a in as_list(s["Action"]))]
    # Then SendMessage on the review queue is all (SAM's SQSSendMessagePolicy would grant sqs:SendMessage*)
    assert [(as_list(s["Action"]), s["Resource"]) for s in sqs] == [
        (["sqs:SendMessage"], {"Fn::GetAtt": ["ReviewQueue", "Arn"]})
    ]


# --- state machine --------------------------------------------------------------------------------


def test_state_machine_is_standard_traced_and_logged(resources: dict[str, Any]) -> None:
    # Given the state machine resource
    machine = resources["ImageClassificationStateMachine"]
    props = machine["Properties"]
    # When its type, tracing and logging are read
    # Then it is a traced Standard workflow logging every event with its data to its own group
    assert machine["Type"] == "AWS::Serverless::StateMachine"
    assert props["Type"] == "STANDARD"
    assert props["DefinitionUri"] == "statemachine/image_classification.asl.json"
    assert props["Tracing"] == {"Enabled": True}
    assert props["Logging"]["Level"] in ("ALL", "ERROR")
    assert props["Logging"]["IncludeExecutionData"] is True
    assert props["Logging"]["Destinations"] == [
        {
            "CloudWatchLogsLogGroup": {
                "LogGroupArn": {"Fn::GetAtt": ["ImageClassificationStateMachineLogGroup", "Arn"]}
            }
        }
    ]


def test_definition_substitutions_point_at_the_functions_queue_and_bus(
    resources: dict[str, Any], globals_function: dict[str, Any]
) -> None:
    # Given the state machine's substitutions
    substitutions = props_of(resources, "ImageClassificationStateMachine")["DefinitionSubstitutions"]
    variables = globals_function["Environment"]["Variables"]
    # When they are read
    # Then each <Function>Arn is that function's ARN, ReviewQueueUrl the review queue's URL,
    # ResultsBusName the results bus, and the metric the ASL puts goes where the functions' EMF goes
    assert substitutions == {
        **{f"{lid}Arn": {"Fn::GetAtt": [lid, "Arn"]} for lid in FUNCTIONS},
        "ReviewQueueUrl": {"Ref": "ReviewQueue"},
        "ResultsBusName": {"Ref": "ResultsBus"},
        "MetricsNamespace": variables["POWERTOOLS_METRICS_NAMESPACE"],
        "MetricsService": variables["POWERTOOLS_SERVICE_NAME"],
    }


def test_definition_substitutions_match_the_asl_placeholders(
    resources: dict[str, Any], asl_text: str
) -> None:
    # Given the substitutions and the ASL file
    substitutions = props_of(resources, "ImageClassificationStateMachine")["DefinitionSubstitutions"]
    # When the ${...} placeholders of the ASL are collected
    placeholders = set(PLACEHOLDER.findall(asl_text))
    # Then every placeholder has a value and every value is used
    assert placeholders == set(substitutions)


def test_task_timeouts_outlast_their_functions(
    resources: dict[str, Any], globals_function: dict[str, Any], asl: dict[str, Any]
) -> None:
    # Given each Task that invokes one of the functions
    by_placeholder = {f"${{{lid}Arn}}": lid for lid in FUNCTIONS}
    tasks = {
        name: state
        for name, state in asl["States"].items()
        if state["Type"] == "Task" and state.get("Parameters", {}).get("FunctionName") in by_placeholder
    }
    assert len(tasks) == len(FUNCTIONS)
    for name, state in tasks.items():
        # When the state's timeout is compared with the function's
        function_timeout = effective(
            globals_function,
            props_of(resources, by_placeholder[state["Parameters"]["FunctionName"]]),
            "Timeout",
        )
        # Then the function's own timeout fires first, with a clearer error than States.Timeout
        assert state["TimeoutSeconds"] > function_timeout, name


# --- parameters -----------------------------------------------------------------------------------


def test_confidence_threshold_is_a_probability(template: dict[str, Any]) -> None:
    # Given the ConfidenceThreshold parameter
    parameter = template["Parameters"]["ConfidenceThreshold"]
    # When its type, bounds and default are read
    # Then CloudFormation rejects values outside [0, 1] and the default is the threshold fitted for the
    # shipped model on its out-of-fold predictions
    assert parameter["Type"] == "Number"
    assert (parameter["MinValue"], parameter["MaxValue"]) == (0, 1)
    metadata = json.loads((PROJECT_ROOT / "model" / "artifacts" / "metadata.json").read_text())
    assert float(parameter["Default"]) == pytest.approx(metadata["calibration"]["threshold"])


def test_log_retention_allows_only_cloudwatch_values(template: dict[str, Any]) -> None:
    # Given the LogRetentionDays parameter
    parameter = template["Parameters"]["LogRetentionDays"]
    # When its allowed values are read
    # Then each is one CloudWatch Logs accepts, and the default is 30 days
    assert set(parameter["AllowedValues"]) <= CLOUDWATCH_RETENTION_DAYS
    assert parameter["Default"] == 30


@pytest.mark.parametrize(
    ("name", "accepted"), [("", True), ("my-images", True), ("my.images.2024", True), ("My_Images", False)]
)
def test_existing_bucket_name_is_empty_or_a_bucket_name(
    template: dict[str, Any], name: str, accepted: bool
) -> None:
    # Given the ExistingBucketName parameter / When a value is checked against its pattern
    pattern = template["Parameters"]["ExistingBucketName"]["AllowedPattern"]
    # Then empty (create a bucket) and valid bucket names pass
    assert (re.fullmatch(pattern, name) is not None) is accepted
    assert template["Parameters"]["ExistingBucketName"]["Default"] == ""


def test_endpoint_name_has_a_default(template: dict[str, Any]) -> None:
    # Given the EndpointName parameter / When its default is read / Then a plain deploy needs no override
    assert template["Parameters"]["EndpointName"]["Default"] == "scones-image-classifier"


def test_samconfig_overrides_only_template_parameters(template: dict[str, Any], project_root: Path) -> None:
    # Given samconfig.toml
    config = tomllib.loads((project_root / "samconfig.toml").read_text(encoding="utf-8"))
    deploy = config["default"]["deploy"]["parameters"]
    # When the parameter overrides are parsed
    names = set(re.findall(r'(\w+)="', deploy["parameter_overrides"]))
    # Then they name parameters that exist, and deploy creates IAM roles knowingly
    assert names == {"EndpointName", "ConfidenceThreshold"}
    assert names <= set(template["Parameters"])
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert config["default"]["global"]["parameters"]["stack_name"] == "scones-image-classification"


# --- bucket ---------------------------------------------------------------------------------------


def test_bucket_is_created_only_without_an_existing_one(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    # Given the condition on the bucket and its policy
    # When ExistingBucketName is empty / Then the stack creates both, otherwise neither
    assert template["Conditions"]["CreateImageBucket"] == {"Fn::Equals": [{"Ref": "ExistingBucketName"}, ""]}
    assert resources["ImageBucket"]["Condition"] == "CreateImageBucket"
    assert resources["ImageBucketPolicy"]["Condition"] == "CreateImageBucket"


def test_bucket_blocks_public_access(resources: dict[str, Any]) -> None:
    # Given the bucket / When its public access block is read / Then all four switches are on
    block = props_of(resources, "ImageBucket")["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )


def test_bucket_encrypts_objects_at_rest(resources: dict[str, Any]) -> None:
    # Given the bucket / When its default encryption is read / Then objects are encrypted by S3 or KMS
    rules = props_of(resources, "ImageBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")


def test_bucket_is_versioned_and_kept(resources: dict[str, Any]) -> None:
    # Given the bucket / When versioning and deletion policy are read
    # Then overwritten images stay recoverable and deleting the stack keeps the images
    assert props_of(resources, "ImageBucket")["VersioningConfiguration"] == {"Status": "Enabled"}
    assert resources["ImageBucket"]["DeletionPolicy"] == "Retain"


def test_bucket_denies_requests_without_tls(resources: dict[str, Any]) -> None:
    # Given the bucket policy
    policy = props_of(resources, "ImageBucketPolicy")
    # When its statements are read
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    # Then a Deny covers the bucket and its objects whenever aws:SecureTransport is false
    assert policy["Bucket"] == {"Ref": "ImageBucket"}
    assert any(
        s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and s["Principal"] == "*"
        and {"Fn::GetAtt": ["ImageBucket", "Arn"]} in as_list(s["Resource"])
        and {"Fn::Sub": "${ImageBucket.Arn}/*"} in as_list(s["Resource"])
        for s in denies
    )


def test_bucket_sends_events_to_eventbridge(resources: dict[str, Any]) -> None:
    # Given the bucket / When its notifications are read / Then EventBridge receives its events
    notifications = props_of(resources, "ImageBucket")["NotificationConfiguration"]
    assert notifications["EventBridgeConfiguration"]["EventBridgeEnabled"] is True


# --- outputs --------------------------------------------------------------------------------------


def test_outputs_name_everything_an_operator_needs(template: dict[str, Any]) -> None:
    # Given the outputs / When their names are read
    outputs = set(template["Outputs"])
    # Then the bucket, the state machine, each function, each log group, the endpoint, the failure
    # notification topic and the review queue are there
    expected = {
        "ImageBucketName",
        "StateMachineArn",
        "StateMachineName",
        "StateMachineConsoleUrl",
        "StateMachineLogGroupName",
        "ClassifierEndpointName",
        "NotificationTopicArn",
        "ReviewQueueUrl",
        "ReviewQueueArn",
    }
    for logical_id, log_group in LOG_GROUPS.items():
        expected |= {f"{logical_id}Arn", f"{logical_id}Name", f"{log_group}Name"}
    assert expected <= outputs


def test_outputs_do_not_reuse_parameter_names(template: dict[str, Any]) -> None:
    # Given outputs and parameters / When their names are compared
    # Then none is shared: SAM CLI 1.170 resolves such an output as the parameter and `sam build` crashes
    assert not set(template["Outputs"]) & set(template["Parameters"])


# --- packaging ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "requirements",
    [
        "layers/common/requirements.txt",
        *(f"functions/{d}/requirements.txt" for d, _, _ in FUNCTIONS.values()),
    ],
)
def test_requirements_are_pinned(project_root: Path, requirements: str) -> None:
    # Given a requirements file SAM builds from
    lines = (project_root / requirements).read_text(encoding="utf-8").splitlines()
    # When its requirement lines are read
    entries = [line.split("#", 1)[0].strip() for line in lines]
    # Then each pins one exact version, so a rebuild ships the same code
    for entry in filter(None, entries):
        assert PINNED_REQUIREMENT.match(entry), f"{requirements}: {entry!r} is not pinned with =="


def test_layer_ships_what_the_shared_package_needs(project_root: Path) -> None:
    # Given the layer's requirements
    names = requirement_names(project_root / "layers/common/requirements.txt")
    # When they are compared with the decided runtime dependencies
    # Then Powertools (with the tracer extra) and pydantic are there (settings are plain pydantic models)
    assert {"aws-lambda-powertools", "pydantic"} <= names
    assert "[tracer]" in (project_root / "layers/common/requirements.txt").read_text(encoding="utf-8")


def test_layer_pins_a_wrapt_that_imports_no_asyncio(project_root: Path) -> None:
    # Given the layer's requirements (aws-xray-sdk requires wrapt with no bound)
    lines = (project_root / "layers/common/requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = [line.split("#", 1)[0].strip() for line in lines]
    # When wrapt's pin is read
    wrapt = [pin for pin in pins if pin.lower().startswith("wrapt==")]
    # Then it is a 1.x: wrapt 2 imports asyncio and more at import, ≈ 15 ms of every cold start
    # (docs/BENCHMARKS.md), for the wrap_function_wrapper that X-Ray's botocore patch uses from both
    assert wrapt and wrapt[0].split("==")[1].startswith("1."), f"layer pins {wrapt or 'no wrapt'}"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_every_import_is_packaged(project_root: Path, logical_id: str) -> None:
    # Given a function's handler and the scones_common modules it imports
    code_dir = project_root / "functions" / FUNCTIONS[logical_id][0]
    handler = code_dir / "app.py"
    if not handler.exists():
        pytest.skip(f"{handler.relative_to(project_root)} does not exist yet")
    imported = third_party_imports(handler, project_root / "layers" / "common")
    # When they are looked up in the layer's, the function's and the runtime's packages
    packaged = requirement_names(project_root / "layers/common/requirements.txt")
    packaged |= requirement_names(code_dir / "requirements.txt")
    unknown = imported - set(DISTRIBUTIONS)
    missing = {
        module
        for module in imported - unknown
        if DISTRIBUTIONS[module] not in packaged and module not in RUNTIME_PROVIDED
    }
    # Then Lambda can import each of them (no ModuleNotFoundError at cold start)
    assert not unknown, f"{logical_id} imports {sorted(unknown)}: map them in DISTRIBUTIONS and ship them"
    assert not missing, f"{logical_id} imports {sorted(missing)}: neither the layer nor the function ships it"
