"""Fixtures shared by every tier: sample images, a stub endpoint model, a local workflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import botocore.handlers
import pytest

from harness.local.workflow import LocalWorkflow
from tests.helpers import StubModel, moto_describe_fix

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "harness" / "samples"


@pytest.fixture
def bicycle_png() -> bytes:
    return (SAMPLES / "bicycle" / "bicycle_s_000051.png").read_bytes()


@pytest.fixture
def stub_model() -> StubModel:
    return StubModel()


@pytest.fixture
def stub_workflow(stub_model: StubModel, tmp_path: Path) -> Iterator[LocalWorkflow]:
    with LocalWorkflow(model=stub_model, log_dir=tmp_path / "logs") as workflow:
        yield workflow


@pytest.fixture
def sagemaker_sdk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The SageMaker Python SDK against moto; the test is skipped where the SDK is not installed.

    Every boto3 session made during the test gets `moto_describe_fix` (botocore copies BUILTIN_HANDLERS
    into each new session), including the ones the commands make for themselves; the SDK's client cache
    is emptied before and after, so no client outlives its moto context.
    """
    pytest.importorskip("sagemaker.core", reason="needs the sagemaker extra: pip install -e '.[sagemaker]'")
    from sagemaker.core.utils.utils import SageMakerClient

    # moto has no iam:SimulatePrincipalPolicy, which the SDK uses to check the role.
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    # No SDK configuration file of the machine's (/etc/xdg/sagemaker, ~/.config/sagemaker) applies:
    # both locations point at an empty one (a missing file would be an error).
    empty_config = tmp_path / "sagemaker-config.yaml"
    empty_config.write_text('SchemaVersion: "1.0"\n')
    monkeypatch.setenv("SAGEMAKER_ADMIN_CONFIG_OVERRIDE", str(empty_config))
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(empty_config))
    monkeypatch.setattr(
        botocore.handlers,
        "BUILTIN_HANDLERS",
        [*botocore.handlers.BUILTIN_HANDLERS, ("after-call.sagemaker", moto_describe_fix)],
    )
    SageMakerClient.reset()
    yield
    SageMakerClient.reset()
