"""Read template.yaml the way the harness needs it: functions, their environment, the state machine."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.ops.execution import MAIN_STATE_MACHINE_NAME

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that reads CloudFormation short tags as their long JSON form.

    `!Ref X` becomes {"Ref": "X"}, `!GetAtt A.B` becomes {"Fn::GetAtt": ["A", "B"]} and any other
    `!Name value` becomes {"Fn::Name": value}: what CloudFormation documents, whichever form was written.
    """


def _construct_cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no other node kinds
        raise yaml.constructor.ConstructorError(
            None, None, f"unknown node for !{tag_suffix}", node.start_mark
        )
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_cfn_yaml(text: str) -> dict[str, Any]:
    """A CloudFormation template's YAML, short tags in their long form."""
    return yaml.load(text, Loader=CfnLoader)


def load_template(path: Path) -> dict[str, Any]:
    return load_cfn_yaml(path.read_text(encoding="utf-8"))


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int

    @property
    def function_name(self) -> str:
        return self.logical_id

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"


@dataclass
class StateMachineSpec:
    logical_id: str
    definition_path: Path
    substitutions: dict[str, str]
    traced: bool = False  # Tracing: Enabled (X-Ray): Step Functions then gives each execution a trace

    def definition(self) -> str:
        text = self.definition_path.read_text(encoding="utf-8")
        return re.sub(r"\$\{(\w+)\}", lambda m: self.substitutions.get(m.group(1), m.group(0)), text)


@dataclass
class Stack:
    """The parts of the SAM stack that the harness runs locally."""

    functions: dict[str, FunctionSpec]
    state_machine: StateMachineSpec
    parameters: dict[str, str]
    bucket_name: str
    # Queues and topics the harness creates in moto, by logical id (their names are the logical ids).
    queues: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> table properties
    buses: list[str] = field(default_factory=list)  # event bus names
    resources: dict[str, Any] = field(default_factory=dict, repr=False)
    resolver: Any = field(default=None, repr=False)
    # Every state machine of the template by logical id, `state_machine` included.
    state_machines: dict[str, StateMachineSpec] = field(default_factory=dict)

    def function_by_name(self, name: str) -> FunctionSpec:
        """By logical id (ClassifyImageFunction) or by folder name (classify_image)."""
        for spec in self.functions.values():
            if name in (spec.logical_id, spec.code_dir.name):
                return spec
        known = ", ".join(sorted(f"{s.code_dir.name} ({s.logical_id})" for s in self.functions.values()))
        raise KeyError(f"no function {name!r} in template.yaml; known: {known}")


class _Resolver:
    def __init__(
        self, parameters: dict[str, str], attributes: dict[str, str], conditions: dict[str, Any] | None = None
    ) -> None:
        self.parameters = parameters
        self.attributes = attributes  # "Logical" and "Logical.Arn" -> value
        self.conditions = conditions or {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, inner),) = value.items()
            if key in ("Ref", "Condition") or key.startswith("Fn::"):
                return self._tag(key.removeprefix("Fn::"), inner)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _tag(self, tag: str, value: Any) -> Any:
        if tag == "Ref":
            return self._ref(str(value))
        if tag == "GetAtt":
            target = value if isinstance(value, str) else ".".join(value)
            return self.attributes.get(target, f"{target}")
        if tag == "Sub":
            text, extra = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))
            return re.sub(
                r"\$\{([\w.:]+)\}",
                lambda m: str(extra.get(m.group(1)) or self._ref_or_att(m.group(1))),
                text,
            )
        if tag == "If":
            return self.resolve(value[1] if self.condition(value[0]) else value[2])
        if tag == "Equals":
            return str(self.resolve(value[0])) == str(self.resolve(value[1]))
        if tag == "Not":
            return not self._truth(value[0])
        if tag == "And":
            return all(self._truth(v) for v in value)
        if tag == "Or":
            return any(self._truth(v) for v in value)
        if tag == "Condition":
            return self.condition(str(value))
        if tag == "Join":
            return str(value[0]).join(str(self.resolve(v)) for v in value[1])
        return value

    def condition(self, name: str) -> bool:
        return self._truth(self.conditions[name])

    def _truth(self, value: Any) -> bool:
        return bool(self.resolve(value))

    def _ref_or_att(self, name: str) -> str:
        return self.attributes[name] if "." in name and name in self.attributes else self._ref(name)

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": "scones-local",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.attributes.get(name, name)


def read_stack(
    template_path: Path | None = None,
    parameter_overrides: dict[str, str] | None = None,
    bucket_name: str = "",
) -> Stack:
    template_path = template_path or PROJECT_ROOT / "template.yaml"
    template = load_template(template_path)
    root = template_path.parent
    resources: dict[str, Any] = template.get("Resources", {})

    parameters = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    parameters.update(parameter_overrides or {})

    functions_raw = {
        lid: res for lid, res in resources.items() if res.get("Type") == "AWS::Serverless::Function"
    }
    bucket_ids = [lid for lid, res in resources.items() if res.get("Type") == "AWS::S3::Bucket"]
    bucket = bucket_name or parameters.get("ExistingBucketName") or "scones-local-images"
    attributes: dict[str, str] = {}
    for lid in bucket_ids:
        attributes[lid] = bucket
        attributes[f"{lid}.Arn"] = f"arn:aws:s3:::{bucket}"
    queues = [lid for lid, res in resources.items() if res.get("Type") == "AWS::SQS::Queue"]
    topics = [lid for lid, res in resources.items() if res.get("Type") == "AWS::SNS::Topic"]
    for lid in queues:
        attributes[lid] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{lid}"
        attributes[f"{lid}.Arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{lid}"
        attributes[f"{lid}.QueueName"] = lid
    for lid in topics:
        attributes[lid] = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{lid}"
        attributes[f"{lid}.TopicArn"] = attributes[lid]
        attributes[f"{lid}.TopicName"] = lid
    tables = {
        lid: res.get("Properties", {})
        for lid, res in resources.items()
        if res.get("Type") == "AWS::DynamoDB::Table"
    }
    for lid in tables:
        attributes[lid] = lid
        attributes[f"{lid}.Arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{lid}"
    buses: list[str] = []
    for lid, res in resources.items():
        if res.get("Type") == "AWS::Events::EventBus":
            name = str(_Resolver(parameters, attributes).resolve(res.get("Properties", {}).get("Name", lid)))
            buses.append(name)
            attributes[lid] = name
            attributes[f"{lid}.Arn"] = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}"
            attributes[f"{lid}.Name"] = name
    for lid, res in resources.items():
        if res.get("Type") == "AWS::Serverless::StateMachine":
            attributes[lid] = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{lid}"
            attributes[f"{lid}.Arn"] = attributes[lid]
            attributes[f"{lid}.Name"] = lid
    for lid in functions_raw:
        attributes[lid] = lid
        attributes[f"{lid}.Arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{lid}"
    resolver = _Resolver(parameters, attributes, template.get("Conditions", {}))

    global_function: dict[str, Any] = template.get("Globals", {}).get("Function", {})
    global_env = resolver.resolve(global_function.get("Environment", {}).get("Variables", {}))
    functions: dict[str, FunctionSpec] = {}
    for lid, res in functions_raw.items():
        props = res.get("Properties", {})
        env = dict(global_env)
        env.update(resolver.resolve(props.get("Environment", {}).get("Variables", {})))
        functions[lid] = FunctionSpec(
            logical_id=lid,
            code_dir=(root / str(props["CodeUri"])).resolve(),
            handler=str(props.get("Handler", global_function.get("Handler", "app.lambda_handler"))),
            environment={k: str(v) for k, v in env.items()},
            timeout_seconds=int(props.get("Timeout", global_function.get("Timeout", 3))),
            memory_mb=int(props.get("MemorySize", global_function.get("MemorySize", 128))),
        )

    machines = [
        (lid, res) for lid, res in resources.items() if res.get("Type") == "AWS::Serverless::StateMachine"
    ]
    if not machines:
        raise ValueError(f"{template_path}: no AWS::Serverless::StateMachine resource")
    state_machines: dict[str, StateMachineSpec] = {}
    for lid, machine in machines:
        props = machine["Properties"]
        substitutions = {
            k: str(v) for k, v in resolver.resolve(props.get("DefinitionSubstitutions", {})).items()
        }
        state_machines[lid] = StateMachineSpec(
            lid,
            (root / str(props["DefinitionUri"])).resolve(),
            substitutions,
            traced=bool((props.get("Tracing") or {}).get("Enabled", False)),
        )
    main = state_machines.get(MAIN_STATE_MACHINE_NAME) or next(iter(state_machines.values()))
    return Stack(
        functions=functions,
        state_machine=main,
        state_machines=state_machines,
        parameters=parameters,
        bucket_name=bucket,
        queues=queues,
        topics=topics,
        tables=tables,
        buses=buses,
        resources=resources,
        resolver=resolver,
    )
