"""The batch state machine (a Distributed Map over an S3 prefix) on moto, with the real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.batch import batch_command
from harness.local.workflow import LocalWorkflow, load_model
from harness.ops.batch import BatchRun, run_batch
from harness.samples import bundled_images
from tests.helpers import StubModel, png_bytes, received, subscribe_queue, subscribe_to_results

pytestmark = pytest.mark.integration

CONFIDENT_BICYCLE = [0.97, 0.03]
CONFIDENT_MOTORCYCLE = [0.02, 0.98]
UNSURE_BICYCLE = [0.6, 0.4]


class KeyedStubModel(StubModel):
    """Answers by the exact bytes it is sent (serialize passes small PNGs through unchanged)."""

    def __init__(self, answers: dict[bytes, list[float]]) -> None:
        super().__init__()
        self.answers = answers

    def invoke(self, body: bytes, content_type: str) -> bytes:
        self.requests.append((content_type, len(body)))
        return json.dumps(self.answers.get(body, CONFIDENT_BICYCLE)).encode()


def _colour(index: int) -> tuple[int, int, int]:
    return (index * 20 % 256, 255 - index * 20 % 256, 80)


@pytest.fixture
def twelve_objects() -> dict[str, tuple[bytes, list[float] | None]]:
    """6 confident bicycles, 3 confident motorcycles, 1 unsure image, 1 corrupt .png, 1 text file."""
    objects: dict[str, tuple[bytes, list[float] | None]] = {}
    for index in range(6):
        objects[f"bike-{index}.png"] = (png_bytes(color=_colour(index)), CONFIDENT_BICYCLE)
    for index in range(6, 9):
        objects[f"moto-{index}.png"] = (png_bytes(color=_colour(index)), CONFIDENT_MOTORCYCLE)
    objects["unsure.png"] = (png_bytes(color=(1, 2, 3)), UNSURE_BICYCLE)
    objects["corrupt.png"] = (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, None)
    objects["notes.txt"] = (b"shot on Tuesday\n", None)
    return objects


@pytest.fixture
def keyed_workflow(
    twelve_objects: dict[str, tuple[bytes, list[float] | None]], tmp_path: Path
) -> Iterator[LocalWorkflow]:
    answers = {data: answer for data, answer in twelve_objects.values() if answer is not None}
    with LocalWorkflow(model=KeyedStubModel(answers), log_dir=tmp_path / "logs") as workflow:
        for name, (data, _) in twelve_objects.items():
            workflow.upload(data, f"batch/one/{name}")
        yield workflow


def test_batch_summary_counts_labels_low_confidence_and_failures(keyed_workflow: LocalWorkflow) -> None:
    # Given twelve objects under a prefix, and one object outside it / When the prefix runs as a batch
    keyed_workflow.upload(png_bytes(), "batch/other/elsewhere.png")
    seen: list[tuple[int, int]] = []
    batch = run_batch(keyed_workflow, "batch/one/", progress=lambda done, total: seen.append((done, total)))
    # Then the batch succeeds and the summary counts every outcome
    assert batch.status == "SUCCEEDED", batch.execution.cause
    summary = batch.summary
    assert summary["total"] == batch.objects == 12
    assert summary["labels"] == {"bicycle": 6, "motorcycle": 3}
    assert (summary["classified"], summary["low_confidence"], summary["failed"], summary["skipped"]) == (
        9,
        1,
        1,
        1,
    )
    assert summary["low_confidence_labels"] == {"bicycle": 1}
    assert summary["failures"] == {"InvalidImageError": 1}
    assert summary["failure_examples"] == {"InvalidImageError": ["batch/one/corrupt.png"]}
    # And the progress callback saw the map run finish every object
    assert seen and seen[-1] == (12, 12)
    assert batch.map_run["itemCounts"]["succeeded"] == 12


def test_every_object_gets_exactly_one_outcome(
    keyed_workflow: LocalWorkflow, twelve_objects: dict[str, tuple[bytes, list[float] | None]]
) -> None:
    # Given twelve objects / When they run as a batch
    batch = run_batch(keyed_workflow, "batch/one/")
    # Then the result files hold one outcome per key, with the documented fields
    by_key = {outcome["s3_key"]: outcome for outcome in batch.outcomes}
    assert sorted(by_key) == sorted(f"batch/one/{name}" for name in twelve_objects)
    assert len(batch.outcomes) == 12
    for outcome in batch.outcomes:
        assert set(outcome) == {"s3_key", "status", "label", "confidence", "error"}
    assert by_key["batch/one/unsure.png"] == {
        "s3_key": "batch/one/unsure.png",
        "status": "LOW_CONFIDENCE",
        "label": "bicycle",
        "confidence": 0.6,
        "error": "THRESHOLD_CONFIDENCE_NOT_MET",
    }
    assert by_key["batch/one/notes.txt"]["status"] == "SKIPPED"
    assert by_key["batch/one/corrupt.png"]["error"] == "InvalidImageError"


def test_result_files_have_the_shape_aws_writes(keyed_workflow: LocalWorkflow) -> None:
    # Given a finished batch
    batch = run_batch(keyed_workflow, "batch/one/")
    # When its manifest is read
    bucket, _, key = batch.summary["manifest"].removeprefix("s3://").partition("/")
    assert key.startswith("batch-results/") and key.endswith("/manifest.json")
    manifest = json.loads(keyed_workflow.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    # Then it lists one SUCCEEDED file of child executions whose Output is the outcome
    assert manifest["MapRunArn"] == batch.summary["map_run_arn"] == batch.execution.output["map_run_arn"]  # type: ignore[index]
    assert [len(manifest["ResultFiles"][s]) for s in ("SUCCEEDED", "FAILED", "PENDING")] == [1, 0, 0]
    entries = json.loads(
        keyed_workflow.s3.get_object(Bucket=bucket, Key=manifest["ResultFiles"]["SUCCEEDED"][0]["Key"])[
            "Body"
        ].read()
    )
    assert len(entries) == 12 and {e["Status"] for e in entries} == {"SUCCEEDED"}
    assert all(json.loads(e["Output"])["s3_key"].startswith("batch/one/") for e in entries)


def test_a_step_that_fails_for_one_image_does_not_abort_the_batch(tmp_path: Path) -> None:
    # Given one image at a time, and a Lambda service fault on all 4 attempts of the first classify call
    with LocalWorkflow(
        model=StubModel(), log_dir=tmp_path, parameter_overrides={"BatchMaxConcurrency": "1"}
    ) as workflow:
        for index in range(3):
            workflow.upload(png_bytes(color=_colour(index)), f"batch/faulty/{index}.png")
        assert workflow.hooks is not None
        workflow.hooks.inject_lambda_fault("ClassifyImageFunction", "ServiceException", times=4)
        # When the prefix runs as a batch
        batch = run_batch(workflow, "batch/faulty/")
    # Then the retries are exhausted for one image, which is recorded by its error; the others classify
    assert batch.status == "SUCCEEDED"
    assert batch.summary["failures"] == {"Lambda.ServiceException": 1}
    assert batch.summary["classified"] == 2 and batch.summary["total"] == 3


def test_a_summary_that_cannot_run_fails_the_batch_by_name(stub_workflow: LocalWorkflow) -> None:
    # Given the summary function failing in the Lambda service on every attempt
    stub_workflow.upload(png_bytes(), "batch/x/a.png")
    assert stub_workflow.hooks is not None
    stub_workflow.hooks.inject_lambda_fault("SummarizeBatchFunction", "ServiceException", times=4)
    # When the batch runs
    batch = run_batch(stub_workflow, "batch/x/")
    # Then it fails with the error's own name, and no summary
    assert batch.status == "FAILED"
    assert batch.execution.error == "Lambda.ServiceException"
    assert batch.summary == {}


def test_an_empty_prefix_is_refused_before_starting(stub_workflow: LocalWorkflow) -> None:
    with pytest.raises(ValueError, match="no objects"):
        run_batch(stub_workflow, "batch/nothing-here/")


def _outcome_of(status: str, error: str | None) -> str:
    if status == "SUCCEEDED":
        return "CLASSIFIED"
    return "LOW_CONFIDENCE" if error == "THRESHOLD_CONFIDENCE_NOT_MET" else "FAILED"


def test_batch_matches_per_image_runs_with_the_real_model(tmp_path: Path) -> None:
    # Given the bundled samples (true class known) and the real model
    samples = bundled_images()
    with LocalWorkflow(model=load_model(), log_dir=tmp_path) as workflow:
        for sample in samples:
            workflow.upload(sample.data, f"batch/samples/{sample.name}")
        # When they run one execution each, and as one batch
        single = {
            sample.name: workflow.run(f"batch/samples/{sample.name}") for sample in samples
        }  # fmt: skip
        batch: BatchRun = run_batch(workflow, "batch/samples/")
    # Then every image has the same label, confidence and outcome both ways
    outcomes = {outcome["s3_key"].rsplit("/", 1)[-1]: outcome for outcome in batch.outcomes}
    for name, result in single.items():
        classified = result.output or result.state_output("ClassifyImage") or {}
        assert outcomes[name]["label"] == classified["label"], name
        assert outcomes[name]["confidence"] == pytest.approx(classified["confidence"]), name
        assert outcomes[name]["status"] == _outcome_of(result.status, result.error), name
    # And so the accuracy on the samples is the same
    truth = {sample.name: sample.expected for sample in samples}
    per_image = sum(
        (r.output or r.state_output("ClassifyImage") or {}).get("label") == truth[n]
        for n, r in single.items()
    )
    batched = sum(outcomes[name]["label"] == truth[name] for name in truth)
    assert batched == per_image
    assert batch.summary["total"] == len(samples)


def test_scones_batch_json_on_a_directory(tmp_path: Path) -> None:
    # Given a directory with two real images and one impostor
    folder = tmp_path / "photos"
    folder.mkdir()
    for sample in bundled_images()[:2]:
        (folder / sample.name).write_bytes(sample.data)
    (folder / "fake.png").write_text("hello")
    # When `scones batch DIR --json` runs
    result = CliRunner().invoke(
        batch_command, [str(folder), "--json", "--log-dir", str(tmp_path / "logs")], catch_exceptions=False
    )
    # Then it prints one JSON object with the summary
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "SUCCEEDED" and record["objects"] == 3
    assert record["summary"]["total"] == 3 and record["summary"]["failures"] == {"InvalidImageError": 1}


def test_scones_batch_refuses_an_empty_prefix() -> None:
    result = CliRunner().invoke(batch_command, ["s3://scones-local-images/nothing/"])
    assert result.exit_code == 2 and "no objects" in result.output


def test_batch_images_go_downstream_as_per_image_runs_do(keyed_workflow: LocalWorkflow) -> None:
    # Given a consumer of the results bus, the review queue and an operator on the notification topic
    downstream = subscribe_to_results(keyed_workflow)
    inbox = subscribe_queue(keyed_workflow)
    review_queue = keyed_workflow.sqs.get_queue_url(QueueName="ReviewQueue")["QueueUrl"]
    # When the batch runs (9 confident, 1 unsure, 1 corrupt, 1 not an image)
    batch = run_batch(keyed_workflow, "batch/one/")
    assert batch.status == "SUCCEEDED", batch.execution.message
    events = received(keyed_workflow, downstream)
    # Then each confident image produced an ImageClassified event, the unsure one a review request
    kinds = sorted(e["detail-type"] for e in events)
    assert kinds == ["BatchClassified"] + ["ImageClassified"] * 9 + ["ImageNeedsReview"]
    classified = {e["detail"]["s3_key"] for e in events if e["detail-type"] == "ImageClassified"}
    assert classified == {f"batch/one/bike-{i}.png" for i in range(6)} | {
        f"batch/one/moto-{i}.png" for i in range(6, 9)
    }
    (review,) = received(keyed_workflow, review_queue)
    assert review["s3_key"] == "batch/one/unsure.png" and review["label"] == "bicycle"
    # And the batch's own event carries the summary
    (summary_event,) = [e for e in events if e["detail-type"] == "BatchClassified"]
    assert summary_event["detail"]["prefix"] == "batch/one/"
    assert summary_event["detail"]["summary"]["failed"] == 1 == batch.count("failed")
    # And the failed image was announced on the topic, by error and key
    (notice,) = received(keyed_workflow, inbox)
    assert notice["failed"] == 1 and notice["total"] == 12
    assert notice["failure_examples"] == {"InvalidImageError": ["batch/one/corrupt.png"]}
    assert notice["executionArn"] == batch.execution.execution_arn


def test_a_batch_without_failures_notifies_nobody(stub_workflow: LocalWorkflow) -> None:
    inbox = subscribe_queue(stub_workflow)
    for index in range(2):
        stub_workflow.upload(png_bytes(color=(index, 9, 9)), f"fine/{index}.png")
    batch = run_batch(stub_workflow, "fine/")
    assert batch.status == "SUCCEEDED" and batch.count("classified") == 2
    assert received(stub_workflow, inbox) == []


def test_scones_batch_refuses_an_empty_directory_by_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(batch_command, [str(tmp_path)])
    assert result.exit_code == 2 and "the directory holds no files" in result.output
