"""`scones monitor`: every capture record read back, the right numbers, the report files."""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws
from PIL import Image

import harness.samples
from harness.cli.monitor import monitor_command
from monitor.html_report import write_report
from monitor.read import read_capture
from monitor.summary import summarize
from tests.helpers import packages_imported_by, png_bytes

pytestmark = pytest.mark.integration

BUCKET = "capture-bucket"
EP = "data_capture/ep-a/AllTraffic/2024/05/01"
# (inferenceTime, probabilities [bicycle, motorcycle]) of ep-a, in three hourly files.
EP_A = {
    f"{EP}/10/00-01-000-0b9e1b0c-8d5e-4e55-9d5b-3a4a3f0a0001.jsonl": [
        ("2024-05-01T10:00:01Z", [0.99, 0.01]),
        ("2024-05-01T10:20:00.500Z", [0.95, 0.05]),
        ("2024-05-01T10:40:00Z", [0.60, 0.40]),
    ],
    f"{EP}/11/05-00-000-0b9e1b0c-8d5e-4e55-9d5b-3a4a3f0a0002.jsonl": [
        ("2024-05-01T11:05:00Z", [0.03, 0.97]),
        ("2024-05-01T11:10:00Z", [0.10, 0.90]),
        ("2024-05-01T11:15:00Z", [0.93, 0.07]),  # exactly at the threshold: not low
        ("2024-05-01T11:30:00Z", [0.20, 0.80]),
    ],
    f"{EP}/12/00-00-000-0b9e1b0c-8d5e-4e55-9d5b-3a4a3f0a0003.jsonl": [
        ("2024-05-01T12:00:00Z", [0.02, 0.98]),
    ],
}
EP_B = {
    "data_capture/ep-b/AllTraffic/2024/05/01/10/30-00-000-0b9e1b0c-8d5e-4e55-9d5b-3a4a3f0a0004.jsonl": [
        ("2024-05-01T10:30:00Z", [0.50, 0.50]),
        ("2024-05-01T10:31:00Z", [0.70, 0.30]),
    ],
}


def image(n: int) -> bytes:
    return png_bytes(color=(n * 20 % 256, 90, 200 - n * 10))


def record(n: int, when: str, probabilities: list[float], *, base64_output: bool = False) -> str:
    """A capture line as SageMaker writes it, built by hand (not by harness.local.capture)."""
    answer = json.dumps(probabilities)
    output = (
        {"data": base64.b64encode(answer.encode()).decode(), "encoding": "BASE64"}
        if base64_output
        else {"data": answer, "encoding": "JSON"}
    )
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "image/png",
                    "mode": "INPUT",
                    "data": base64.b64encode(image(n)).decode(),
                    "encoding": "BASE64",
                },
                "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", **output},
            },
            "eventMetadata": {"eventId": f"event-{n}", "inferenceTime": when},
            "eventVersion": "0",
        }
    )


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto bucket holding ep-a's three files (one with a blank and a broken line) and ep-b's one."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        n = 0
        for key, rows in {**EP_A, **EP_B}.items():
            lines = []
            for when, probabilities in rows:
                lines.append(record(n, when, probabilities, base64_output=n == 1))
                n += 1
            if key.startswith(f"{EP}/12/"):
                lines += ["", "{not a capture record"]
            client.put_object(Bucket=BUCKET, Key=key, Body="\n".join(lines) + "\n")
        client.put_object(Bucket=BUCKET, Key="data_capture/ep-a/notes.txt", Body=b"not a capture file")
        yield client


def test_reader_reads_every_record_of_every_file(s3: Any) -> None:
    # When ep-a's capture is read
    capture = read_capture(s3, BUCKET, "data_capture", "ep-a")
    # Then every record of its three files is there, oldest first, and the broken line is named
    assert capture.files == sorted(EP_A)
    assert [r.confidence for r in capture.records] == [0.99, 0.95, 0.60, 0.97, 0.90, 0.93, 0.80, 0.98]
    assert [r.label for r in capture.records][:4] == ["bicycle", "bicycle", "bicycle", "motorcycle"]
    assert [r.time for r in capture.records] == sorted(r.time for r in capture.records)
    assert capture.problems and capture.problems[0].startswith(f"{sorted(EP_A)[-1]}:3: ")
    assert len(capture.problems) == 1
    # and the captured images decode back to the bytes sent; the BASE64-encoded answer is read too
    assert [r.input_data for r in capture.records] == [image(n) for n in range(8)]
    assert capture.records[1].probabilities == (0.95, 0.05)
    assert {r.endpoint for r in capture.records} == {"ep-a"}


def test_reader_without_an_endpoint_reads_every_endpoint(s3: Any) -> None:
    capture = read_capture(s3, BUCKET, "data_capture")
    assert len(capture.files) == 4
    assert len(capture.records) == 10
    assert {r.endpoint for r in capture.records} == {"ep-a", "ep-b"}


def test_summary_numbers(s3: Any) -> None:
    # Given ep-a's 8 answers: confidences 0.99 0.95 0.60 0.97 0.90 0.93 0.80 0.98
    capture = read_capture(s3, BUCKET, "data_capture", "ep-a")
    # When summarised at the default threshold 0.93
    summary = summarize(capture, 0.93)
    # Then the counts, mean, median and low-confidence rate (below, not at, 0.93) are exact
    assert summary.records == 8 and summary.files == 3
    assert summary.labels == {"bicycle": 4, "motorcycle": 4}
    assert summary.mean_confidence == pytest.approx(7.12 / 8)
    assert summary.median_confidence == pytest.approx((0.93 + 0.95) / 2)
    assert summary.min_confidence == pytest.approx(0.60)
    assert (summary.low_confidence, summary.with_confidence) == (3, 8)
    assert summary.low_confidence_rate == pytest.approx(3 / 8)
    assert summary.span_seconds == pytest.approx(2 * 3600 - 1)
    assert summary.skipped_lines == 1


def test_report_files_are_written_and_self_contained(s3: Any, tmp_path: Path) -> None:
    # Given ep-a's capture
    capture = read_capture(s3, BUCKET, "data_capture", "ep-a")
    summary = summarize(capture, 0.93)
    # When the report is written with a gallery of 4
    files = write_report(capture, summary, tmp_path / "out", gallery_size=4)
    # Then the four charts are PNG files
    assert set(files.charts) == {"confidence", "label_mix", "low_confidence", "gallery"}
    for path in files.charts.values():
        with Image.open(path) as chart:
            assert chart.format == "PNG" and chart.width >= 900
    # and the HTML loads nothing from outside: every image is inline, there is no script
    page = files.html.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page
    sources = page.split('src="')[1:]
    assert len(sources) == 3 + 4
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    # and the gallery shows the least confident first: 0.60, 0.80, 0.90, 0.93
    captions = [part.split("</span>")[0] for part in page.split('<span class="conf">')[1:]]
    assert captions == ["bicycle 0.600", "motorcycle 0.800", "motorcycle 0.900", "bicycle 0.930"]


def test_cli_json_summary_from_a_bucket(s3: Any, tmp_path: Path) -> None:
    # When `scones monitor` reads the bucket with default credentials (here: moto's)
    result = CliRunner().invoke(
        monitor_command,
        # the answers were written around the course's 0.93, not the shipped default
        [
            "--bucket",
            BUCKET,
            "--endpoint-name",
            "ep-a",
            "--out",
            str(tmp_path),
            "--json",
            "--threshold",
            "0.93",
        ],
    )
    # Then it prints one JSON object with the summary and the paths it wrote
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["records"] == 8 and summary["files"] == 3
    assert summary["labels"] == {"bicycle": 4, "motorcycle": 4}
    assert summary["low_confidence"] == 3 and summary["low_confidence_rate"] == 0.375
    assert summary["median_confidence"] == pytest.approx(0.94)
    assert summary["threshold"] == 0.93
    assert (summary["first"], summary["last"]) == ("2024-05-01T10:00:01Z", "2024-05-01T12:00:00Z")
    assert summary["endpoints"] == ["ep-a"] and summary["skipped_lines"] == 1
    assert Path(summary["report"]).is_file() and Path(summary["report"]).parent == tmp_path


def test_cli_table_names_the_numbers(s3: Any, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        monitor_command, ["--bucket", BUCKET, "--threshold", "0.95", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "10 captured inferences" in result.output
    assert "low-confidence rate" in result.output and "below 0.95" in result.output
    assert (tmp_path / "report.html").is_file()


def test_cli_without_a_source_is_a_usage_error() -> None:
    result = CliRunner().invoke(monitor_command, [])
    assert result.exit_code == 2
    assert "--bucket" in result.output and "--demo" in result.output


def test_cli_exits_1_when_nothing_was_captured(s3: Any, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        monitor_command, ["--bucket", BUCKET, "--prefix", "elsewhere", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "no data capture records under s3://capture-bucket/elsewhere/" in result.output
    assert not (tmp_path / "report.html").exists()


def test_cli_without_matplotlib_says_how_to_install_it(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Python where matplotlib (the charts' optional `monitor` extra) cannot be found
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    # When the capture would be reported on
    result = CliRunner().invoke(monitor_command, ["--bucket", BUCKET, "--out", str(tmp_path / "out")])
    # Then one line says what is missing and how to install it, and nothing is written
    assert result.exit_code == 2
    assert result.stderr == "Error: the monitor's charts need matplotlib: pip install -e '.[monitor]'\n"
    assert not (tmp_path / "out").exists()


def test_the_cli_never_imports_matplotlib_to_start() -> None:
    # matplotlib is optional (and slow to import): loading every `scones` command must not import it
    assert "matplotlib" not in packages_imported_by("from harness.cli import scones")


def test_cli_demo_captures_the_local_workflow_and_reports_on_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given three bundled images and the impostor, which never reaches the endpoint (kept short: CPU)
    samples = [*harness.samples.bundled_images()[:3], harness.samples.impostor()]
    monkeypatch.setattr(harness.samples, "demo_samples", lambda: samples)
    monkeypatch.chdir(tmp_path)  # the function logs go to .scones/logs under it
    # When `scones monitor --demo` runs them through the local workflow with the real model
    result = CliRunner().invoke(monitor_command, ["--demo", "--out", "report", "--json"])
    # Then the report covers the three captured inferences
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert summary["records"] == 3 and summary["endpoints"] == ["scones-image-classifier"]
    assert summary["source"] == "s3://scones-local-images/data_capture/"
    assert sum(summary["labels"].values()) == 3
    assert (tmp_path / "report" / "report.html").is_file()
    # and each image it lists links to the page of the execution that sent it (the impostor sent none)
    report = (tmp_path / "report" / "report.html").read_text()
    links = re.findall(r'class="execution"><a href="([^"]+)"', report)
    assert len(links) == 3
    keys = set()
    for link in links:
        page = (tmp_path / "report" / link).resolve()
        assert page.is_file(), link
        keys.update(re.findall(r"<figcaption class=muted>test/([^<]+)</figcaption>", page.read_text()))
    assert keys == {sample.name for sample in samples[:3]}
