"""Each handler alone, as `sam local invoke` runs it: its own environment, moto S3, a stub endpoint."""

from __future__ import annotations

import json
from pathlib import Path

from harness.local.lambda_runtime import LocalFunction
from harness.local.workflow import LocalWorkflow
from scones_common.constants import DEFAULT_CONFIDENCE_THRESHOLD
from tests.helpers import PROJECT_ROOT

EVENTS = PROJECT_ROOT / "events"


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_serialize_returns_the_image_base64_encoded(stub_workflow: LocalWorkflow, bicycle_png: bytes) -> None:
    stub_workflow.upload(bicycle_png, "test/bicycle_s_000051.png")
    payload, error = stub_workflow.invoke_function("serialize_image_data", event("serialize_image_data.json"))
    assert error is None, payload
    assert payload == event("classify_image.json")


def test_classify_returns_inferences_label_and_confidence(stub_workflow: LocalWorkflow) -> None:
    payload, error = stub_workflow.invoke_function("classify_image", event("classify_image.json"))
    assert error is None, payload
    assert (payload["inferences"], payload["label"], payload["confidence"]) == ([0.97, 0.03], "bicycle", 0.97)
    assert payload["content_type"] == "image/png"


def test_filter_passes_a_confident_image_on(stub_workflow: LocalWorkflow) -> None:
    payload, error = stub_workflow.invoke_function(
        "FilterInferencesFunction", event("filter_inferences.json")
    )
    assert error is None, payload
    assert payload["threshold"] == DEFAULT_CONFIDENCE_THRESHOLD


def test_filter_raises_the_named_error_below_threshold(stub_workflow: LocalWorkflow) -> None:
    unsure = event("filter_inferences.json") | {"confidence": 0.5, "inferences": [0.5, 0.5]}
    payload, error = stub_workflow.invoke_function("filter_inferences", unsure)
    assert error == "Unhandled"
    assert payload["errorType"] == "ThresholdConfidenceNotMetError"
    assert "0.5000" in payload["errorMessage"]
    assert f"{DEFAULT_CONFIDENCE_THRESHOLD:.4f}" in payload["errorMessage"]


def test_handlers_log_json_with_the_image_as_correlation_id(
    stub_workflow: LocalWorkflow, tmp_path: Path
) -> None:
    stub_workflow.invoke_function("classify_image", event("classify_image.json"))
    log = (tmp_path / "logs" / "classify_image.log").read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith('{"level"')]
    classified = next(r for r in records if r["message"] == "image classified")
    assert classified["correlation_id"] == "s3://scones-local-images/test/bicycle_s_000051.png"
    assert classified["service"] == "scones-image-classification"
    metrics = [json.loads(line) for line in log.splitlines() if '"_aws"' in line]
    names = {m["Name"] for record in metrics for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"InferenceLatency", "ImagesClassified"} <= names


def test_missing_setting_fails_the_cold_start_with_its_name(stub_workflow: LocalWorkflow) -> None:
    spec = stub_workflow.stack.function_by_name("classify_image")
    environment = {k: v for k, v in spec.environment.items() if k != "ENDPOINT_NAME"}
    spec.environment = environment
    function = LocalFunction(spec, environment={"ENDPOINT_NAME": ""})
    result = function.invoke(event("classify_image.json"))
    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == "SettingsError"
    assert "ENDPOINT_NAME" in result.json()["errorMessage"]
