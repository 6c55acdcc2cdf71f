"""SageMaker training, deployment and cleanup: the exact requests, checked against moto."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from model.sagemaker_cli import cleanup_endpoint_command, deploy_command, train_sagemaker_command
from model.sagemaker_jobs import (
    IMAGE_CLASSIFICATION_REGISTRIES,
    PYTORCH_TRAINING_REGIONS,
    SERVERLESS_CAPTURE_WARNING,
    BuiltinHyperparameters,
    InvalidSettingError,
    MissingRoleError,
    NotFoundError,
    SageMakerJobError,
    ScriptHyperparameters,
    ServerlessSettings,
    cleanup_endpoint,
    deploy,
    image_classification_uri,
    launch_builtin_training,
    launch_pytorch_training,
    pytorch_training_uri,
    wait_for_endpoint,
)
from model.stage_data import BucketNotFoundError
from tests.helpers import fake_aws_environment

REGION = "us-east-1"
BUCKET = "scones-test-bucket"
ROLE = "arn:aws:iam::123456789012:role/scones-sagemaker"
IC_IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1"
MODEL_DATA = f"s3://{BUCKET}/scones/output/job/output/model.tar.gz"
TRAIN_LST = "".join(
    f"{i}\t{i % 2}\t{'bicycle' if i % 2 == 0 else 'motorcycle'}/x{i}.png\n" for i in range(10)
)


class Recorder:
    """Keeps every SageMaker request's parameters, as botocore is about to serialise them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, copy.deepcopy(params)))

    def one(self, operation: str) -> dict[str, Any]:
        found = [params for name, params in self.calls if name == operation]
        assert len(found) == 1, f"{operation}: {len(found)} calls"
        return found[0]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    fake_aws_environment(monkeypatch, tmp_path, REGION, "SAGEMAKER_ROLE_ARN", "SCONES_BUCKET")
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="scones/train_lst/train.lst", Body=TRAIN_LST.encode())
        sm = boto3.client("sagemaker", region_name=REGION)
        recorder = Recorder()
        sm.meta.events.register("before-parameter-build.sagemaker.*", recorder)
        yield {"s3": s3, "sm": sm, "recorder": recorder}


@pytest.fixture
def session_recorder(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Records the requests of the clients the CLI creates from its own boto3 session."""
    recorder = Recorder()
    original = boto3.session.Session.client

    def client(self: boto3.session.Session, service: str, *args: Any, **kwargs: Any) -> Any:
        made = original(self, service, *args, **kwargs)
        if service == "sagemaker":
            made.meta.events.register("before-parameter-build.sagemaker.*", recorder)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)
    return recorder


def _channel(name: str, folder: str, content_type: str | None = "application/x-image") -> dict[str, Any]:
    channel: dict[str, Any] = {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": f"s3://{BUCKET}/scones/{folder}/",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "CompressionType": "None",
    }
    if content_type:
        channel["ContentType"] = content_type
    return channel


# --- Images ---------------------------------------------------------------------------------------------


def test_image_uris() -> None:
    assert image_classification_uri(REGION) == IC_IMAGE
    assert image_classification_uri("cn-north-1") == (
        "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/image-classification:1"
    )
    assert pytorch_training_uri("eu-west-1", "ml.m5.xlarge") == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.9-cpu-py312"
    )
    assert pytorch_training_uri("af-south-1", "ml.g4dn.xlarge") == (
        "626614931356.dkr.ecr.af-south-1.amazonaws.com/pytorch-training:2.9-gpu-py312"
    )
    with pytest.raises(InvalidSettingError, match="mars-north-1"):
        image_classification_uri("mars-north-1")


def test_image_tables_match_the_sagemaker_sdk() -> None:
    # Only where the SDK happens to be installed: the tables were copied from it.
    image_uris = pytest.importorskip("sagemaker.core.image_uris")
    for region in IMAGE_CLASSIFICATION_REGISTRIES:
        assert image_classification_uri(region) == image_uris.retrieve("image-classification", region=region)
    for region in PYTORCH_TRAINING_REGIONS:
        for instance_type in ("ml.m5.xlarge", "ml.g4dn.xlarge"):
            expected = image_uris.retrieve(
                "pytorch",
                region=region,
                version="2.9",
                py_version="py312",
                instance_type=instance_type,
                image_scope="training",
            )
            assert pytorch_training_uri(region, instance_type) == expected


# --- Built-in training ----------------------------------------------------------------------------------


def test_builtin_training_request_is_exact(aws: dict[str, Any]) -> None:
    # When the built-in algorithm is launched on the staged data
    launch = launch_builtin_training(
        aws["sm"], aws["s3"], region=REGION, role_arn=ROLE, bucket=BUCKET, job_name="ic-job", epochs=5
    )
    # Then the request has the four image channels and the hyperparameters as strings,
    # num_training_samples/num_classes counted from train.lst
    request = aws["recorder"].one("CreateTrainingJob")
    assert request == {
        "TrainingJobName": "ic-job",
        "AlgorithmSpecification": {"TrainingImage": IC_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [
            _channel("train", "train"),
            _channel("validation", "test"),
            _channel("train_lst", "train_lst"),
            _channel("validation_lst", "test_lst"),
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/scones/output"},
        "ResourceConfig": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {
            "image_shape": "3,32,32",
            "num_classes": "2",
            "num_training_samples": "10",
            "epochs": "5",
            "use_pretrained_model": "0",
            "augmentation_type": "crop_color_transform",
            "mini_batch_size": "32",
            "learning_rate": "0.001",
        },
    }
    # And SageMaker (moto) has the job with those hyperparameters
    described = aws["sm"].describe_training_job(TrainingJobName="ic-job")
    assert described["HyperParameters"] == request["HyperParameters"]
    assert launch.model_data == f"s3://{BUCKET}/scones/output/ic-job/output/model.tar.gz"
    assert launch.description is None


def test_builtin_training_waits_and_reports_progress(aws: dict[str, Any]) -> None:
    seen: list[str] = []
    launch = launch_builtin_training(
        aws["sm"],
        aws["s3"],
        region=REGION,
        role_arn=ROLE,
        bucket=BUCKET,
        job_name="ic-wait",
        instance_type="ml.p3.2xlarge",
        hyperparameters=BuiltinHyperparameters(num_classes=3, num_training_samples=99, num_layers=18),
        wait=True,
        on_status=lambda status, elapsed: seen.append(status),
        sleep=lambda seconds: None,
    )
    assert seen == ["Completed"]
    assert launch.description is not None and launch.model_data.endswith("/ic-wait/output/model.tar.gz")
    request = aws["recorder"].one("CreateTrainingJob")
    assert request["ResourceConfig"]["InstanceType"] == "ml.p3.2xlarge"
    assert request["HyperParameters"]["num_layers"] == "18"
    assert request["HyperParameters"]["num_classes"] == "3"


def test_builtin_training_errors(aws: dict[str, Any]) -> None:
    common: dict[str, Any] = {"region": REGION, "bucket": BUCKET}
    with pytest.raises(MissingRoleError, match="--role"):
        launch_builtin_training(aws["sm"], aws["s3"], role_arn=None, **common)
    with pytest.raises(MissingRoleError, match="not an IAM role ARN"):
        launch_builtin_training(aws["sm"], aws["s3"], role_arn="scones-role", **common)
    with pytest.raises(BucketNotFoundError, match="other-bucket"):
        launch_builtin_training(aws["sm"], aws["s3"], region=REGION, role_arn=ROLE, bucket="other-bucket")
    with pytest.raises(NotFoundError, match="stage-data"):
        launch_builtin_training(aws["sm"], aws["s3"], role_arn=ROLE, prefix="elsewhere", **common)
    assert "CreateTrainingJob" not in aws["recorder"].names()


# --- PyTorch script mode ------------------------------------------------------------------------------


def test_pytorch_training_request_and_source_archive(aws: dict[str, Any], tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "train.py").write_text("print('training')\n")
    (model_dir / "inference.py").write_text("# imported by train.py\n")
    (model_dir / "training").mkdir()
    (model_dir / "training" / "pipeline.py").write_text("# a subpackage of the trainer\n")
    (model_dir / "training" / "__pycache__").mkdir()
    (model_dir / "training" / "__pycache__" / "pipeline.cpython-311.pyc").write_bytes(b"")
    launch_pytorch_training(
        aws["sm"],
        aws["s3"],
        region=REGION,
        role_arn=ROLE,
        bucket=BUCKET,
        job_name="pt-job",
        model_dir=model_dir,
        hyperparameters=ScriptHyperparameters(epochs=3, lr=0.01, batch_size=16, seed=7),
    )
    source_key = "scones/code/pt-job/sourcedir.tar.gz"
    assert aws["recorder"].one("CreateTrainingJob") == {
        "TrainingJobName": "pt-job",
        "AlgorithmSpecification": {
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.9-cpu-py312",
            "TrainingInputMode": "File",
        },
        "RoleArn": ROLE,
        "InputDataConfig": [_channel("train", "train", content_type=None)],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/scones/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {
            "epochs": "3",
            "lr": "0.01",
            "batch-size": "16",
            "seed": "7",
            "sagemaker_program": '"model/train.py"',
            "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/{source_key}"),
            "sagemaker_region": '"us-east-1"',
            "sagemaker_container_log_level": "20",
        },
    }
    # The uploaded source is laid out like the repository, with a requirements.txt
    archive = aws["s3"].get_object(Bucket=BUCKET, Key=source_key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
    assert {"model/train.py", "model/inference.py", "requirements.txt"} <= names
    # The trainer's subpackage travels too (a glob of model/*.py alone would leave it behind)
    assert "model/training/pipeline.py" in names
    assert not any("__pycache__" in name for name in names)
    assert "layers/common/scones_common/images.py" in names
    # torch comes with the container: not reinstalled (the weights packages only depend on it)
    assert "onnxruntime==" in requirements
    assert not any(line.split("==")[0] == "torch" for line in requirements.splitlines())


def test_pytorch_training_needs_the_script(aws: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"train\.py"):
        launch_pytorch_training(
            aws["sm"], aws["s3"], region=REGION, role_arn=ROLE, bucket=BUCKET, model_dir=tmp_path
        )


# --- Deploy -----------------------------------------------------------------------------------------------


def test_realtime_deploy_captures_data(aws: dict[str, Any]) -> None:
    seen: list[str] = []
    deployment = deploy(
        aws["sm"],
        aws["s3"],
        region=REGION,
        role_arn=ROLE,
        model_data=MODEL_DATA,
        endpoint_name="scones-ep",
        instance_count=2,
        on_status=lambda status, elapsed: seen.append(status),
        sleep=lambda seconds: None,
    )
    recorder = aws["recorder"]
    assert recorder.one("CreateModel") == {
        "ModelName": "scones-ep",
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {"Image": IC_IMAGE, "ModelDataUrl": MODEL_DATA},
    }
    expected_capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{BUCKET}/data_capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
    }
    assert recorder.one("CreateEndpointConfig") == {
        "EndpointConfigName": "scones-ep",
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": "scones-ep",
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 2,
                "InitialVariantWeight": 1.0,
            }
        ],
        "DataCaptureConfig": expected_capture,
    }
    assert recorder.one("CreateEndpoint") == {"EndpointName": "scones-ep", "EndpointConfigName": "scones-ep"}
    described = aws["sm"].describe_endpoint_config(EndpointConfigName="scones-ep")
    assert described["DataCaptureConfig"]["DestinationS3Uri"] == f"s3://{BUCKET}/data_capture"
    assert seen == ["InService"] and deployment.status == "InService"
    assert deployment.data_capture_uri == f"s3://{BUCKET}/data_capture" and deployment.warnings == []


def test_serverless_deploy_omits_data_capture_and_warns(aws: dict[str, Any]) -> None:
    deployment = deploy(
        aws["sm"],
        aws["s3"],
        region=REGION,
        role_arn=ROLE,
        model_data=MODEL_DATA,
        endpoint_name="scones-sl",
        serverless=ServerlessSettings(memory_size_mb=3072, max_concurrency=8),
        capture_bucket="bucket-that-is-not-used",
        wait=False,
    )
    assert aws["recorder"].one("CreateEndpointConfig") == {
        "EndpointConfigName": "scones-sl",
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": "scones-sl",
                "ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 8},
            }
        ],
    }
    # (moto describes a missing DataCaptureConfig as {})
    assert not aws["sm"].describe_endpoint_config(EndpointConfigName="scones-sl").get("DataCaptureConfig")
    assert deployment.warnings == [SERVERLESS_CAPTURE_WARNING] and deployment.data_capture_uri is None


@pytest.mark.parametrize(("memory", "concurrency"), [(1000, 5), (8192, 5), (2048, 0), (2048, 201)], ids=str)
def test_serverless_settings_are_checked(memory: int, concurrency: int) -> None:
    with pytest.raises(InvalidSettingError):
        ServerlessSettings(memory_size_mb=memory, max_concurrency=concurrency)


def test_deploy_errors(aws: dict[str, Any]) -> None:
    common: dict[str, Any] = {"region": REGION, "wait": False}
    with pytest.raises(MissingRoleError):
        deploy(aws["sm"], aws["s3"], role_arn="", model_data=MODEL_DATA, **common)
    with pytest.raises(BucketNotFoundError, match="missing-bucket"):
        deploy(aws["sm"], aws["s3"], role_arn=ROLE, model_data="s3://missing-bucket/m.tar.gz", **common)
    with pytest.raises(BucketNotFoundError, match="no-capture-bucket"):
        deploy(
            aws["sm"],
            aws["s3"],
            role_arn=ROLE,
            model_data=MODEL_DATA,
            capture_bucket="no-capture-bucket",
            **common,
        )
    with pytest.raises(InvalidSettingError, match="S3 object URI"):
        deploy(aws["sm"], aws["s3"], role_arn=ROLE, model_data="/local/model.tar.gz", **common)
    with pytest.raises(InvalidSettingError, match="endpoint name"):
        deploy(aws["sm"], aws["s3"], role_arn=ROLE, model_data=MODEL_DATA, endpoint_name="bad_name", **common)
    assert aws["recorder"].names() == []
    # A second deploy to the same name stops before creating anything
    deploy(aws["sm"], aws["s3"], role_arn=ROLE, model_data=MODEL_DATA, endpoint_name="twice", **common)
    with pytest.raises(SageMakerJobError, match="already exists"):
        deploy(aws["sm"], aws["s3"], role_arn=ROLE, model_data=MODEL_DATA, endpoint_name="twice", **common)
    assert aws["recorder"].names().count("CreateModel") == 1


def test_failed_endpoint_reports_the_reason() -> None:
    class FailingSageMaker:
        def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
            return {"EndpointStatus": "Failed", "FailureReason": "model.tar.gz is not a model"}

    with pytest.raises(SageMakerJobError, match=r"ended Failed: model\.tar\.gz is not a model"):
        wait_for_endpoint(FailingSageMaker(), "ep", sleep=lambda seconds: None)


# --- Cleanup ----------------------------------------------------------------------------------------------


def test_cleanup_deletes_all_three_then_reports_missing(aws: dict[str, Any]) -> None:
    sm = aws["sm"]
    deploy(
        sm, aws["s3"], region=REGION, role_arn=ROLE, model_data=MODEL_DATA, endpoint_name="gone", wait=False
    )
    report = cleanup_endpoint(sm, "gone")
    assert report.deleted == ["endpoint gone", "endpoint configuration gone", "model gone"]
    assert report.missing == []
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []
    # Cleaning up again is not an error: everything is reported missing
    again = cleanup_endpoint(sm, "gone")
    assert again.deleted == []
    assert again.missing == ["endpoint gone", "endpoint configuration gone", "model gone"]


def test_cleanup_follows_the_live_names(aws: dict[str, Any]) -> None:
    # Given an endpoint whose configuration and model have other names
    sm = aws["sm"]
    sm.create_model(ModelName="m-1", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IC_IMAGE})
    sm.create_endpoint_config(
        EndpointConfigName="c-1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m-1",
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="live", EndpointConfigName="c-1")
    report = cleanup_endpoint(sm, "live")
    assert report.deleted == ["endpoint live", "endpoint configuration c-1", "model m-1"]


# --- CLI ---------------------------------------------------------------------------------------------------


def test_cli_deploy_prints_the_stack_parameter(aws: dict[str, Any], session_recorder: Recorder) -> None:
    result = CliRunner().invoke(
        deploy_command, ["--model-data", MODEL_DATA, "--role", ROLE, "--endpoint-name", "cli-ep"]
    )
    assert result.exit_code == 0, result.output
    assert "endpoint cli-ep: InService" in result.stdout
    assert "EndpointName=cli-ep" in result.stdout
    assert f"data capture: s3://{BUCKET}/data_capture/cli-ep/AllTraffic/" in result.stdout
    assert "DataCaptureConfig" in session_recorder.one("CreateEndpointConfig")


def test_cli_serverless_deploy_warns_on_stderr(aws: dict[str, Any], session_recorder: Recorder) -> None:
    result = CliRunner().invoke(
        deploy_command,
        ["--model-data", MODEL_DATA, "--role", ROLE, "--serverless", "--memory-size", "4096", "--no-wait"],
    )
    assert result.exit_code == 0, result.output
    assert "data capture is not supported on serverless endpoints" in result.stderr
    variant = session_recorder.one("CreateEndpointConfig")["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 4096, "MaxConcurrency": 5}


def test_cli_train_and_cleanup(
    aws: dict[str, Any], session_recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGEMAKER_ROLE_ARN", ROLE)
    result = CliRunner().invoke(train_sagemaker_command, ["--bucket", BUCKET, "--epochs", "2", "--wait"])
    assert result.exit_code == 0, result.output
    assert "completed" in result.stdout and "scones deploy --model-data s3://" in result.stdout
    assert session_recorder.one("CreateTrainingJob")["HyperParameters"]["epochs"] == "2"

    CliRunner().invoke(deploy_command, ["--model-data", MODEL_DATA, "--endpoint-name", "to-clean"])
    result = CliRunner().invoke(cleanup_endpoint_command, ["--endpoint-name", "to-clean"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "deleted endpoint to-clean",
        "deleted endpoint configuration to-clean",
        "deleted model to-clean",
    ]
    result = CliRunner().invoke(cleanup_endpoint_command, ["--endpoint-name", "to-clean"])
    assert result.exit_code == 0 and "not found (nothing to delete): endpoint to-clean" in result.stdout


@pytest.mark.parametrize(
    ("command", "args", "env_drop", "message"),
    [
        (deploy_command, ["--model-data", MODEL_DATA], [], "Error: no SageMaker execution role: pass --role"),
        (
            deploy_command,
            ["--model-data", MODEL_DATA, "--role", ROLE],
            ["AWS_DEFAULT_REGION"],
            "Error: no AWS region",
        ),
        (
            train_sagemaker_command,
            ["--bucket", "nope-bucket", "--role", ROLE],
            [],
            "Error: S3 bucket 'nope-bucket'",
        ),
        (cleanup_endpoint_command, ["--endpoint-name", "x_y"], [], "Error: endpoint name 'x_y'"),
    ],
    ids=["no-role", "no-region", "no-bucket", "bad-name"],
)
def test_cli_errors_are_one_line(
    aws: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    command: Any,
    args: list[str],
    env_drop: list[str],
    message: str,
) -> None:
    for name in env_drop:
        monkeypatch.delenv(name)
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
