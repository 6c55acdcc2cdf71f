"""The `scones` command as a user runs it, with the committed default model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import scones
from harness.samples import SAMPLES_DIR
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.integration
ROOT = PROJECT_ROOT


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(scones, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_run_json_prints_one_object_per_image(tmp_path: Path) -> None:
    # Given two real images and one impostor
    impostor = tmp_path / "fake.png"
    impostor.write_text("hello")
    images = [
        SAMPLES_DIR / "bicycle" / "bicycle_s_000051.png",
        SAMPLES_DIR / "motorcycle" / "minibike_s_000698.png",
    ]
    # When they are run with --json
    code, out, _ = invoke(
        "run", *map(str, images), str(impostor), "--json", "--log-dir", str(tmp_path / "logs")
    )
    # Then every execution reached a terminal state and the keys are the documented ones
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["image"] for r in records] == [*map(str, images), str(impostor)]
    for record in records:
        assert {"image", "status", "error", "cause", "label", "confidence", "inferences"} <= set(record)
    assert records[2]["status"] == "FAILED" and records[2]["error"] == "InvalidImageError"
    assert [r["label"] for r in records[:2]] == ["bicycle", "motorcycle"]


def test_run_threshold_zero_accepts_everything(tmp_path: Path) -> None:
    code, out, _ = invoke("run", str(SAMPLES_DIR), "--json", "--threshold", "0", "--log-dir", str(tmp_path))
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 8 and {r["status"] for r in records} == {"SUCCEEDED"}


def test_run_rejects_a_threshold_outside_zero_to_one() -> None:
    code, _, err = invoke("run", str(SAMPLES_DIR), "--threshold", "1.5")
    assert code == 2 and "1.5" in err


def test_invoke_runs_one_function_with_a_sample_event(tmp_path: Path) -> None:
    code, out, _ = invoke(
        "invoke",
        "serialize_image_data",
        "--event",
        str(ROOT / "events" / "serialize_image_data.json"),
        "--log-dir",
        str(tmp_path),
    )
    assert code == 0
    assert json.loads(out)["content_type"] == "image/png"


def test_invoke_reports_the_function_error(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"s3_bucket": "scones-local-images", "s3_key": "test/missing.png"}))
    code, out, err = invoke(
        "invoke", "serialize_image_data", "--event", str(event), "--log-dir", str(tmp_path)
    )
    assert code == 1
    assert "ImageNotFoundError" in err and json.loads(out)["errorType"] == "ImageNotFoundError"


def test_invoke_names_an_unknown_function(tmp_path: Path) -> None:
    code, _, err = invoke("invoke", "nope", "--event", str(ROOT / "events" / "serialize_image_data.json"))
    assert code == 2 and "no function 'nope'" in err


def test_demo_prints_a_table_of_every_sample(tmp_path: Path) -> None:
    code, out, _ = invoke("demo", "--log-dir", str(tmp_path))
    assert code == 0
    assert "bicycle_s_000051-4000x3000.jpg" in out and "InvalidImageError" in out
    assert "10 executions" in out


def test_load_locally_reports_percentiles_and_every_outcome(tmp_path: Path) -> None:
    from harness.cli.load import load_command

    result = CliRunner().invoke(
        load_command,
        ["--rate", "4", "--duration", "1", "--json", "--log-dir", str(tmp_path)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["target"] == "the local workflow"
    assert report["planned"] == report["started"] == report["finished"] == 4
    # The samples in bundle order: 4 bicycles first, the real model classifies each one.
    assert sum(report["outcomes"].values()) == 4
    assert set(report["outcomes"]) <= {"SUCCEEDED", "FAILED: THRESHOLD_CONFIDENCE_NOT_MET"}
    assert report["latency_seconds"]["p50"] > 0


def test_load_refuses_a_rate_above_a_quota_naming_it() -> None:
    from harness.cli.load import load_command

    # The state transitions of 500 executions/s exceed StateTransition's refill first (500 / 8 = 62.5/s)
    result = CliRunner().invoke(load_command, ["--rate", "500", "--duration", "1"])
    assert result.exit_code == 2 and "StateTransition quota's 62.5/s" in result.output
    # With an account's raised StateTransition quota, StartExecution's 150/s is next
    result = CliRunner().invoke(
        load_command, ["--rate", "500", "--duration", "1", "--max-transition-rate", "10000"]
    )
    assert result.exit_code == 2 and "StartExecution quota's 150/s" in result.output


def test_load_locally_with_faults_accounts_for_every_execution(tmp_path: Path) -> None:
    from harness.cli.load import load_command

    # Given half of 10 images (each its own copy) drawn a catalogued fault with seed 3
    result = CliRunner().invoke(
        load_command,
        [
            "--count",
            "10",
            "--rate",
            "5",
            "--faults",
            "0.5",
            "--seed",
            "3",
            "--json",
            "--log-dir",
            str(tmp_path),
        ],
        catch_exceptions=False,
    )
    # Then every execution is accounted for, and every fault that was reached ended as catalogued
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    accounting = report["accounting"]
    assert report["planned"] == report["started"] == accounting["started"] == accounting["finished"] == 10
    assert (accounting["faults_share"], accounting["seed"]) == (0.5, 3)
    assert accounting["faults_injected"] > 0
    assert accounting["unaccounted"] == [] and accounting["not_as_catalogued"] == []
    failed = sum(n for outcome, n in report["outcomes"].items() if outcome.startswith("FAILED"))
    assert accounting["announced"] == failed


def test_load_refuses_faults_with_a_stack_before_calling_aws() -> None:
    from harness.cli.load import load_command

    result = CliRunner().invoke(load_command, ["--stack", "any-stack", "--faults", "0.2"])
    assert result.exit_code == 2
    assert "--faults: not with --stack" in result.output
