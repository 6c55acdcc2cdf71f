"""Fixtures shared by every tier: sample images, a stub endpoint model, a local workflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.workflow import LocalWorkflow
from tests.helpers import StubModel

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
