"""Fixtures for the infrastructure tests: template.yaml (short tags understood) and the ASL definition."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"
ASL_PATH = PROJECT_ROOT / "statemachine" / "image_classification.asl.json"


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that reads CloudFormation short tags as their long JSON form.

    `!Ref X` becomes {"Ref": "X"}, `!GetAtt A.B` becomes {"Fn::GetAtt": ["A", "B"]} and any other
    `!Name value` becomes {"Fn::Name": value}, so tests compare plain dicts whichever form was written.
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
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def _load_cfn_yaml(text: str) -> dict[str, Any]:
    return yaml.load(text, Loader=CfnLoader)  # CfnLoader is a SafeLoader subclass


@pytest.fixture(scope="session")
def load_cfn_yaml() -> Callable[[str], dict[str, Any]]:
    """The loader itself, for tests of it (a fixture: test modules do not import conftest)."""
    return _load_cfn_yaml


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return _load_cfn_yaml(TEMPLATE_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def globals_function(template: dict[str, Any]) -> dict[str, Any]:
    return template.get("Globals", {}).get("Function", {})


@pytest.fixture(scope="session")
def asl_text() -> str:
    if not ASL_PATH.exists():
        pytest.skip(f"{ASL_PATH.relative_to(PROJECT_ROOT)} does not exist yet")
    return ASL_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def asl(asl_text: str) -> dict[str, Any]:
    return json.loads(asl_text)
