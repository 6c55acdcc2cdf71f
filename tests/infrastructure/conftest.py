"""Fixtures for the infrastructure tests: template.yaml (short tags understood) and the ASL definition."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.local import template as cloudformation
from tests.helpers import PROJECT_ROOT

TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"
ASL_PATH = PROJECT_ROOT / "statemachine" / "image_classification.asl.json"


@pytest.fixture(scope="session")
def load_cfn_yaml() -> Callable[[str], dict[str, Any]]:
    """The loader itself, for tests of it (a fixture: test modules do not import conftest)."""
    return cloudformation.load_cfn_yaml


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return cloudformation.load_cfn_yaml(TEMPLATE_PATH.read_text(encoding="utf-8"))


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
