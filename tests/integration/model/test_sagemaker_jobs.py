"""SageMaker training, deployment and cleanup through the SageMaker Python SDK v3, checked against moto.

The tests that need the SDK take the `sagemaker_sdk` fixture (tests/conftest.py), which skips them
where the `sagemaker` extra is not installed; the others check what works without it.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from harness.cli.cleanup_endpoint import cleanup_endpoint_command
from harness.cli.deploy import deploy_command
from harness.cli.train_sagemaker import train_sagemaker_command
from model.inference import DEFAULT_MODEL_DIR
from model.sagemaker_jobs.cleanup import cleanup_endpoint
from model.sagemaker_jobs.endpoint import SERVERLESS_CAPTURE_WARNING, ServerlessSettings, deploy
from model.sagemaker_jobs.errors import (
    InvalidSettingError,
    MissingRoleError,
    NotFoundError,
    SageMakerJobError,
    SdkNotInstalledError,
)
from model.sagemaker_jobs.images import builtin_image_uri, pytorch_inference_uri, pytorch_training_uri
from model.sagemaker_jobs.training import (
    BuiltinHyperparameters,
    ScriptHyperparameters,
    launch_builtin_training,
    launch_pytorch_training,
)
from model.sagemaker_jobs.waiting import wait_for_endpoint
from model.stage_data import BucketNotFoundError
from tests.helpers import fake_aws_environment, packages_imported_by

REGION = "us-east-1"
BUCKET = "scones-test-bucket"
ROLE = "arn:aws:iam::123456789012:role/scones-sagemaker"
IC_IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1"
PYTORCH_INFERENCE_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
PYTORCH_TRAINING_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.9-cpu-py312"
SERVING_ENVIRONMENT = {"SAGEMAKER_PROGRAM": "inference.py"}
MODEL_DATA = f"s3://{BUCKET}/scones/output/job/output/model.tar.gz"
UPLOADED_MODEL = re.compile(rf"^s3://{BUCKET}/scones/model/[0-9a-f]{{16}}/model\.tar\.gz$")
TRAIN_LST = "".join(
    f"{i}\t{i % 2}\t{'bicycle' if i % 2 == 0 else 'motorcycle'}/x{i}.png\n" for i in range(10)
)
INSTALL_HINT = "pip install -e '.[sagemaker]'"
SM_TRAIN_SH = "/opt/ml/input/data/sm_drivers/sm_train.sh"  # ModelTrainer's driver script


class Recorder:
    """Keeps every SageMaker request's parameters, as botocore is about to validate and send them.

    Registered last, at the service level: botocore calls the handlers of `...sagemaker.*` first and
    those of `...sagemaker` last, so the recorder sees each request after the project's own fix-ups
    (the serverless MemorySizeInMB key).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, copy.deepcopy(params)))

    def listen(self, events: Any) -> None:
        events.register_last("before-parameter-build.sagemaker", self)

    def one(self, operation: str) -> dict[str, Any]:
        found = [params for name, params in self.calls if name == operation]
        assert len(found) == 1, f"{operation}: {len(found)} calls"
        return found[0]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def created(self) -> list[str]:
        return [name for name in self.names() if name.startswith(("Create", "Delete"))]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sagemaker_sdk: None) -> Iterator[dict[str, Any]]:
    fake_aws_environment(monkeypatch, tmp_path, REGION, "SAGEMAKER_ROLE_ARN", "SCONES_BUCKET")
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        recorder = Recorder()
        recorder.listen(session.events)
        s3 = session.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="scones/train_lst/train.lst", Body=TRAIN_LST.encode())
        yield {"session": session, "s3": s3, "sm": session.client("sagemaker"), "recorder": recorder}


@pytest.fixture
def session_recorder(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Records the requests of the clients the CLI (through the SDK) makes from its own boto3 session."""
    recorder = Recorder()
    original = boto3.session.Session.client

    def client(self: boto3.session.Session, service: str, *args: Any, **kwargs: Any) -> Any:
        made = original(self, service, *args, **kwargs)
        if service == "sagemaker":
            recorder.listen(made.meta.events)
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
        "InputMode": "File",
    }
    if content_type:
        channel["ContentType"] = content_type
    return channel


def _read_s3_tar(s3: Any, uri: str) -> dict[str, bytes]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {
            member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


def _named_files(node: Any) -> set[str]:
    """Every value of a "..._file" key in metadata.json, at any depth."""
    if isinstance(node, dict):
        found = {v for k, v in node.items() if k.endswith("_file") and isinstance(v, str)}
        return found.union(*(_named_files(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_named_files(v) for v in node))
    return set()


# --- Images ---------------------------------------------------------------------------------------------


def test_image_uris(sagemaker_sdk: None) -> None:
    # The SDK's tables, read offline
    assert builtin_image_uri(REGION) == IC_IMAGE
    assert builtin_image_uri("cn-north-1") == (
        "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/image-classification:1"
    )
    assert pytorch_training_uri("eu-west-1", "ml.m5.xlarge") == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.9-cpu-py312"
    )
    assert pytorch_training_uri("af-south-1", "ml.g4dn.xlarge") == (
        "626614931356.dkr.ecr.af-south-1.amazonaws.com/pytorch-training:2.9-gpu-py312"
    )
    # Serving: the CPU image for CPU instances and for serverless (no instance type)
    assert pytorch_inference_uri(REGION, "ml.m5.xlarge") == PYTORCH_INFERENCE_IMAGE
    assert pytorch_inference_uri(REGION, None) == PYTORCH_INFERENCE_IMAGE
    with pytest.raises(InvalidSettingError, match=r"mars-north-1 \(Unsupported region: mars-north-1\)$"):
        builtin_image_uri("mars-north-1")


# --- Built-in training ----------------------------------------------------------------------------------


def test_builtin_training_request_is_exact(aws: dict[str, Any]) -> None:
    # When the built-in algorithm is launched on the staged data
    launch = launch_builtin_training(
        aws["session"], role_arn=ROLE, bucket=BUCKET, base_job_name="ic-job", epochs=5
    )
    # Then the request has the four image channels and the hyperparameters as strings,
    # num_training_samples/num_classes counted from train.lst; ModelTrainer names the job
    request = aws["recorder"].one("CreateTrainingJob")
    assert re.fullmatch(r"ic-job-\d{14}", request["TrainingJobName"])
    assert launch.job_name == request["TrainingJobName"]
    assert {key: value for key, value in request.items() if key != "TrainingJobName"} == {
        "AlgorithmSpecification": {"TrainingImage": IC_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [
            _channel("train", "train"),
            _channel("validation", "test"),
            _channel("train_lst", "train_lst"),
            _channel("validation_lst", "test_lst"),
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/scones/output", "CompressionType": "GZIP"},
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
    described = aws["sm"].describe_training_job(TrainingJobName=launch.job_name)
    assert described["HyperParameters"] == request["HyperParameters"]
    assert launch.model_data == f"s3://{BUCKET}/scones/output/{launch.job_name}/output/model.tar.gz"
    assert launch.status is None and launch.training_image == IC_IMAGE


def test_builtin_training_waits_and_reports_progress(aws: dict[str, Any]) -> None:
    seen: list[str] = []
    launch = launch_builtin_training(
        aws["session"],
        role_arn=ROLE,
        bucket=BUCKET,
        base_job_name="ic-wait",
        instance_type="ml.p3.2xlarge",
        hyperparameters=BuiltinHyperparameters(num_classes=3, num_training_samples=99, num_layers=18),
        wait=True,
        on_status=lambda status, elapsed: seen.append(status),
        sleep=lambda seconds: None,
    )
    assert seen == ["Completed"]
    assert launch.status == "Completed"
    assert launch.model_data.endswith(f"/{launch.job_name}/output/model.tar.gz")
    request = aws["recorder"].one("CreateTrainingJob")
    assert request["ResourceConfig"]["InstanceType"] == "ml.p3.2xlarge"
    assert request["HyperParameters"]["num_layers"] == "18"
    assert request["HyperParameters"]["num_classes"] == "3"


def test_builtin_training_errors(aws: dict[str, Any]) -> None:
    session = aws["session"]
    with pytest.raises(MissingRoleError, match="--role"):
        launch_builtin_training(session, role_arn=None, bucket=BUCKET)
    with pytest.raises(MissingRoleError, match="not an IAM role ARN"):
        launch_builtin_training(session, role_arn="scones-role", bucket=BUCKET)
    with pytest.raises(BucketNotFoundError, match="other-bucket"):
        launch_builtin_training(session, role_arn=ROLE, bucket="other-bucket")
    with pytest.raises(NotFoundError, match="stage-data"):
        launch_builtin_training(session, role_arn=ROLE, bucket=BUCKET, prefix="elsewhere")
    with pytest.raises(InvalidSettingError, match="longer than 48"):
        launch_builtin_training(session, role_arn=ROLE, bucket=BUCKET, base_job_name="j" * 49)
    assert "CreateTrainingJob" not in aws["recorder"].names()


def test_training_sends_no_telemetry(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the SDK's telemetry request replaced by a counter
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.telemetry import telemetry_logging
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.train import ModelTrainer

    sent: list[Any] = []
    monkeypatch.setattr(
        telemetry_logging, "_send_telemetry_request", lambda *args, **kwargs: sent.append(args)
    )
    # When this project starts a training job / Then nothing is reported
    launch_builtin_training(aws["session"], role_arn=ROLE, bucket=BUCKET, base_job_name="quiet")
    assert sent == []
    # (whereas the SDK left to its defaults reports the same call: the counter is in the right place)
    ModelTrainer(
        sagemaker_session=Session(boto_session=aws["session"], default_bucket=BUCKET),
        role=ROLE,
        training_image=IC_IMAGE,
        compute=Compute(instance_type="ml.m5.xlarge", instance_count=1),
    ).train(
        input_data_config=[InputData(channel_name="train", data_source=f"s3://{BUCKET}/scones/train/")],
        wait=False,
        logs=False,
    )
    assert len(sent) == 1


# --- PyTorch script mode ------------------------------------------------------------------------------


def _fake_model_package(tmp_path: Path) -> Path:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "train.py").write_text("print('training')\n")
    (model_dir / "inference.py").write_text("# imported by train.py\n")
    (model_dir / "training").mkdir()
    (model_dir / "training" / "pipeline.py").write_text("# a subpackage of the trainer\n")
    (model_dir / "training" / "__pycache__").mkdir()
    (model_dir / "training" / "__pycache__" / "pipeline.cpython-311.pyc").write_bytes(b"")
    return model_dir


def test_pytorch_training_request_and_source_archive(aws: dict[str, Any], tmp_path: Path) -> None:
    launch = launch_pytorch_training(
        aws["session"],
        role_arn=ROLE,
        bucket=BUCKET,
        base_job_name="pt-job",
        model_dir=_fake_model_package(tmp_path),
        hyperparameters=ScriptHyperparameters(epochs=3, lr=0.01, batch_size=16, seed=7),
    )
    request = aws["recorder"].one("CreateTrainingJob")
    job = launch.job_name
    assert re.fullmatch(r"pt-job-\d{14}", job) and request["TrainingJobName"] == job
    # ModelTrainer's script mode: its driver (sm_drivers channel) runs the code channel's entry script
    code_root = f"s3://{BUCKET}/scones/code/{job}/input"
    source_uri = f"{code_root}/code/sourcedir.tar.gz"
    assert {key: value for key, value in request.items() if key != "TrainingJobName"} == {
        "AlgorithmSpecification": {
            "TrainingImage": PYTORCH_TRAINING_IMAGE,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["/bin/bash"],
            "ContainerArguments": ["-c", f"chmod +x {SM_TRAIN_SH} && {SM_TRAIN_SH}"],
        },
        "RoleArn": ROLE,
        "InputDataConfig": [
            _channel("train", "train", content_type=None),
            {
                "ChannelName": "code",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": source_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            },
            {
                "ChannelName": "sm_drivers",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"{code_root}/sm_drivers",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            },
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/scones/output", "CompressionType": "GZIP"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        # train.py's arguments: the driver passes each as `--name value`
        "HyperParameters": {"epochs": "3", "lr": "0.01", "batch-size": "16", "seed": "7"},
        "Environment": {"PYTHONUNBUFFERED": "1"},
    }
    # The uploaded source is laid out like the repository, with a requirements.txt
    files = _read_s3_tar(aws["s3"], source_uri)
    names = set(files)
    assert {"model/train.py", "model/inference.py", "requirements.txt"} <= names
    # The trainer's subpackage travels too (a glob of model/*.py alone would leave it behind)
    assert "model/training/pipeline.py" in names
    assert not any("__pycache__" in name for name in names)
    assert "layers/common/scones_common/images.py" in names
    # torch comes with the container: not reinstalled (the weights packages only depend on it)
    requirements = files["requirements.txt"].decode()
    assert "onnxruntime==" in requirements
    assert not any(line.split("==")[0] == "torch" for line in requirements.splitlines())
    # And the driver unpacks it, installs requirements.txt and runs model/train.py from the source root
    drivers = f"scones/code/{job}/input/sm_drivers"
    train_sh = aws["s3"].get_object(Bucket=BUCKET, Key=f"{drivers}/sm_train.sh")["Body"].read().decode()
    assert "cd /opt/ml/input/data/code" in train_sh and "tar -xzf sourcedir.tar.gz" in train_sh
    assert "install_requirements.py requirements.txt" in train_sh
    source_code = json.loads(
        aws["s3"].get_object(Bucket=BUCKET, Key=f"{drivers}/sourcecode.json")["Body"].read()
    )
    assert source_code["entry_script"] == "model/train.py"


def test_pytorch_training_leaves_the_recipe_alone_by_default(aws: dict[str, Any], tmp_path: Path) -> None:
    # train.py ships a model uncalibrated when epochs, lr or batch size differ from its recipe's
    launch_pytorch_training(
        aws["session"], role_arn=ROLE, bucket=BUCKET, model_dir=_fake_model_package(tmp_path)
    )
    assert aws["recorder"].one("CreateTrainingJob")["HyperParameters"] == {"seed": "0"}


def test_pytorch_training_needs_the_script(aws: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"train\.py"):
        launch_pytorch_training(aws["session"], role_arn=ROLE, bucket=BUCKET, model_dir=tmp_path)


@pytest.mark.parametrize(
    "settings",
    [{"epochs": 0}, {"batch_size": 0}, {"lr": 0.0}, {"lr": 1.5}],
    ids=["epochs", "batch", "lr0", "lr"],
)
def test_script_hyperparameters_are_checked(settings: dict[str, Any]) -> None:
    with pytest.raises(InvalidSettingError):
        ScriptHyperparameters(**settings)


# --- Deploy -----------------------------------------------------------------------------------------------


def test_deploy_serves_the_projects_own_model(aws: dict[str, Any]) -> None:
    # When deploy runs with neither --model-data nor --algorithm
    deployment = deploy(
        aws["session"], role_arn=ROLE, bucket=BUCKET, endpoint_name="scones-own", sleep=lambda seconds: None
    )
    # Then it uploaded model.tar.gz under the prefix, at a key named after its sha256
    assert UPLOADED_MODEL.match(deployment.model_data), deployment.model_data
    assert deployment.uploaded is not None and deployment.uploaded.uploaded
    files = _read_s3_tar(aws["s3"], deployment.model_data)
    assert deployment.model_data.split("/")[-2] == deployment.uploaded.sha256[:16]
    # holding the handler's entry point and requirements ...
    assert "from model.serving.handler import" in files["code/inference.py"].decode()
    assert "onnxruntime==" in files["code/requirements.txt"].decode()
    assert "code/model/serving/handler.py" in files and "code/scones_common/images.py" in files
    # ... and metadata.json with every model file it names, the bytes of model/artifacts
    metadata = json.loads(files["metadata.json"])
    named = _named_files(metadata)
    assert metadata["model_file"] in named
    for name in named | {"metadata.json"}:
        assert (
            hashlib.sha256(files[name]).digest()
            == hashlib.sha256((DEFAULT_MODEL_DIR / name).read_bytes()).digest()
        )
    # And the model is served by the PyTorch inference container through code/inference.py
    assert aws["recorder"].one("CreateModel") == {
        "ModelName": "scones-own",
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {
            "Image": PYTORCH_INFERENCE_IMAGE,
            "ModelDataUrl": deployment.model_data,
            "Environment": SERVING_ENVIRONMENT,
        },
    }
    container = aws["sm"].describe_model(ModelName="scones-own")["PrimaryContainer"]
    assert container["Image"] == PYTORCH_INFERENCE_IMAGE
    assert container["ModelDataUrl"] == deployment.model_data
    assert container["Environment"] == SERVING_ENVIRONMENT
    # behind an endpoint that captures every request and answer
    config = aws["sm"].describe_endpoint_config(EndpointConfigName="scones-own")
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 100
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == f"s3://{BUCKET}/data_capture"
    assert aws["sm"].describe_endpoint(EndpointName="scones-own")["EndpointConfigName"] == "scones-own"
    assert deployment.status == "InService" and deployment.algorithm == "pytorch"

    # A second endpoint of the same model reuses the uploaded object
    again = deploy(aws["session"], role_arn=ROLE, bucket=BUCKET, endpoint_name="scones-own-2", wait=False)
    assert again.model_data == deployment.model_data
    assert again.uploaded is not None and not again.uploaded.uploaded


def test_deploy_packages_another_model_dir(aws: dict[str, Any], tmp_path: Path) -> None:
    # Given a model directory whose metadata.json names a file that is missing
    (tmp_path / "metadata.json").write_text(json.dumps({"model_file": "missing.onnx"}))
    # When deploy packages it / Then it stops before creating anything, naming the file
    with pytest.raises(
        NotFoundError, match=r"cannot build model\.tar\.gz: metadata\.json names missing\.onnx"
    ):
        deploy(aws["session"], role_arn=ROLE, bucket=BUCKET, model_dir=tmp_path, wait=False)
    assert aws["recorder"].created() == []


def test_deploy_given_model_data_uploads_nothing(aws: dict[str, Any]) -> None:
    deployment = deploy(
        aws["session"], role_arn=ROLE, model_data=MODEL_DATA, endpoint_name="given", wait=False
    )
    container = aws["recorder"].one("CreateModel")["PrimaryContainer"]
    assert container == {
        "Image": PYTORCH_INFERENCE_IMAGE,
        "ModelDataUrl": MODEL_DATA,
        "Environment": SERVING_ENVIRONMENT,
    }
    assert deployment.uploaded is None
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="scones/model/")


def test_realtime_deploy_captures_data(aws: dict[str, Any]) -> None:
    # The built-in algorithm's model, as the course deployed it
    seen: list[str] = []
    deployment = deploy(
        aws["session"],
        role_arn=ROLE,
        algorithm="builtin",
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
    assert deployment.image == IC_IMAGE and deployment.environment == {}


def test_serverless_deploy_omits_data_capture_and_warns(aws: dict[str, Any]) -> None:
    deployment = deploy(
        aws["session"],
        role_arn=ROLE,
        algorithm="builtin",
        model_data=MODEL_DATA,
        endpoint_name="scones-sl",
        serverless=ServerlessSettings(memory_size_mb=3072, max_concurrency=8),
        capture_bucket="bucket-that-is-not-used",
        wait=False,
    )
    # The request has the key botocore requires (the SDK alone would send MemorySizeInMb)
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
    described = aws["sm"].describe_endpoint_config(EndpointConfigName="scones-sl")
    assert described["ProductionVariants"][0]["ServerlessConfig"] == {
        "MemorySizeInMB": 3072,
        "MaxConcurrency": 8,
    }
    # (moto describes a missing DataCaptureConfig as {})
    assert not described.get("DataCaptureConfig")
    assert deployment.warnings == [SERVERLESS_CAPTURE_WARNING] and deployment.data_capture_uri is None


def test_serverless_project_model_uses_the_cpu_image(aws: dict[str, Any]) -> None:
    deploy(
        aws["session"],
        role_arn=ROLE,
        model_data=MODEL_DATA,
        endpoint_name="scones-sl-own",
        serverless=ServerlessSettings(),
        wait=False,
    )
    assert aws["recorder"].one("CreateModel")["PrimaryContainer"]["Image"] == PYTORCH_INFERENCE_IMAGE
    variant = aws["recorder"].one("CreateEndpointConfig")["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}


def test_the_sdk_still_needs_the_serverless_fix(aws: dict[str, Any]) -> None:
    # aws/sagemaker-core#225: the resource class alone sends "MemorySizeInMb", which botocore rejects.
    # When this starts failing, the SDK has been fixed and sdk._fix_serverless_memory_size_key can go.
    from botocore.exceptions import ParamValidationError
    from sagemaker.core.resources import EndpointConfig
    from sagemaker.core.shapes import ProductionVariant, ProductionVariantServerlessConfig

    plain = boto3.Session(region_name=REGION)  # without prepare_boto_session
    aws["sm"].create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IC_IMAGE})
    with pytest.raises(ParamValidationError, match="MemorySizeInMb"):
        EndpointConfig.create(
            endpoint_config_name="unfixed",
            production_variants=[
                ProductionVariant(
                    variant_name="AllTraffic",
                    model_name="m",
                    serverless_config=ProductionVariantServerlessConfig(
                        memory_size_in_mb=2048, max_concurrency=5
                    ),
                )
            ],
            session=plain,
            region=REGION,
        )


@pytest.mark.parametrize(("memory", "concurrency"), [(1000, 5), (8192, 5), (2048, 0), (2048, 201)], ids=str)
def test_serverless_settings_are_checked(memory: int, concurrency: int) -> None:
    with pytest.raises(InvalidSettingError):
        ServerlessSettings(memory_size_mb=memory, max_concurrency=concurrency)


def test_deploy_errors(aws: dict[str, Any]) -> None:
    session = aws["session"]
    common: dict[str, Any] = {"wait": False}
    with pytest.raises(MissingRoleError):
        deploy(session, role_arn="", model_data=MODEL_DATA, **common)
    with pytest.raises(BucketNotFoundError, match="missing-bucket"):
        deploy(session, role_arn=ROLE, model_data="s3://missing-bucket/m.tar.gz", **common)
    with pytest.raises(BucketNotFoundError, match="missing-bucket"):
        deploy(session, role_arn=ROLE, bucket="missing-bucket", **common)
    with pytest.raises(BucketNotFoundError, match="no-capture-bucket"):
        deploy(session, role_arn=ROLE, model_data=MODEL_DATA, capture_bucket="no-capture-bucket", **common)
    with pytest.raises(InvalidSettingError, match="S3 object URI"):
        deploy(session, role_arn=ROLE, model_data="/local/model.tar.gz", **common)
    with pytest.raises(InvalidSettingError, match="endpoint name"):
        deploy(session, role_arn=ROLE, model_data=MODEL_DATA, endpoint_name="bad_name", **common)
    with pytest.raises(InvalidSettingError, match="--bucket"):
        deploy(session, role_arn=ROLE, **common)
    with pytest.raises(InvalidSettingError, match=r"builtin .* --model-data"):
        deploy(session, role_arn=ROLE, algorithm="builtin", bucket=BUCKET, **common)
    assert aws["recorder"].names() == []
    # A second deploy to the same name stops before creating (or uploading) anything
    deploy(session, role_arn=ROLE, model_data=MODEL_DATA, endpoint_name="twice", **common)
    with pytest.raises(SageMakerJobError, match="already exists"):
        deploy(session, role_arn=ROLE, bucket=BUCKET, endpoint_name="twice", **common)
    assert aws["recorder"].names().count("CreateModel") == 1
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="scones/model/")


def test_failed_endpoint_reports_the_reason(sagemaker_sdk: None) -> None:
    class FailingEndpoint:
        endpoint_name = "ep"
        endpoint_status = "Failed"
        failure_reason = "model.tar.gz is not a model"

        def refresh(self) -> FailingEndpoint:
            return self

    with pytest.raises(SageMakerJobError, match=r"ended Failed: model\.tar\.gz is not a model"):
        wait_for_endpoint(FailingEndpoint(), sleep=lambda seconds: None)


# --- Cleanup ----------------------------------------------------------------------------------------------


def test_cleanup_deletes_all_three_then_reports_missing(aws: dict[str, Any]) -> None:
    session, sm = aws["session"], aws["sm"]
    deploy(session, role_arn=ROLE, model_data=MODEL_DATA, endpoint_name="gone", wait=False)
    report = cleanup_endpoint(session, "gone")
    assert report.deleted == ["endpoint gone", "endpoint configuration gone", "model gone"]
    assert report.missing == []
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []
    # Cleaning up again is not an error: everything is reported missing, nothing is deleted
    before = aws["recorder"].created()
    again = cleanup_endpoint(session, "gone")
    assert again.deleted == []
    assert again.missing == ["endpoint gone", "endpoint configuration gone", "model gone"]
    assert aws["recorder"].created() == before


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
    report = cleanup_endpoint(aws["session"], "live")
    assert report.deleted == ["endpoint live", "endpoint configuration c-1", "model m-1"]


def test_cleanup_of_a_half_finished_deploy(aws: dict[str, Any]) -> None:
    # Given a model and a configuration named after an endpoint that was never created
    sm = aws["sm"]
    sm.create_model(ModelName="half", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IC_IMAGE})
    sm.create_endpoint_config(
        EndpointConfigName="half",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "half",
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    report = cleanup_endpoint(aws["session"], "half")
    assert report.deleted == ["endpoint configuration half", "model half"]
    assert report.missing == ["endpoint half"]


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


def test_cli_deploy_uploads_the_projects_model(aws: dict[str, Any], session_recorder: Recorder) -> None:
    # Given only a bucket and a role (from the environment, as docs/SAGEMAKER.md sets them)
    env = {"SCONES_BUCKET": BUCKET, "SAGEMAKER_ROLE_ARN": ROLE}
    result = CliRunner(env=env).invoke(deploy_command, ["--endpoint-name", "cli-own", "--no-wait"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        rf"model\.tar\.gz \(uploaded\): s3://{BUCKET}/scones/model/\w{{16}}/model\.tar\.gz  sha256 \w{{64}}",
        lines[0],
    )
    assert f"image: {PYTORCH_INFERENCE_IMAGE}" in lines
    container = session_recorder.one("CreateModel")["PrimaryContainer"]
    assert container["Image"] == PYTORCH_INFERENCE_IMAGE and container["Environment"] == SERVING_ENVIRONMENT
    assert UPLOADED_MODEL.match(container["ModelDataUrl"])


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
    assert "completed" in result.stdout
    assert "scones deploy --algorithm builtin --model-data s3://" in result.stdout
    assert session_recorder.one("CreateTrainingJob")["HyperParameters"]["epochs"] == "2"

    result = CliRunner().invoke(
        deploy_command, ["--algorithm", "builtin", "--model-data", MODEL_DATA, "--endpoint-name", "to-clean"]
    )
    assert result.exit_code == 0, result.output
    assert session_recorder.one("CreateModel")["PrimaryContainer"]["Image"] == IC_IMAGE
    result = CliRunner().invoke(cleanup_endpoint_command, ["--endpoint-name", "to-clean"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "deleted endpoint to-clean",
        "deleted endpoint configuration to-clean",
        "deleted model to-clean",
    ]
    result = CliRunner().invoke(cleanup_endpoint_command, ["--endpoint-name", "to-clean"])
    assert result.exit_code == 0 and "not found (nothing to delete): endpoint to-clean" in result.stdout


def test_cli_pytorch_training_says_how_to_deploy_its_output(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGEMAKER_ROLE_ARN", ROLE)
    result = CliRunner().invoke(train_sagemaker_command, ["--bucket", BUCKET, "--algorithm", "pytorch"])
    assert result.exit_code == 0, result.output
    assert "training job scones-pytorch-" in result.stdout and "started" in result.stdout
    assert "scones deploy --model-dir trained" in result.stdout


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
            deploy_command,
            ["--role", ROLE],
            [],
            "Error: give --bucket (or $SCONES_BUCKET) to upload the model",
        ),
        (
            train_sagemaker_command,
            ["--bucket", "nope-bucket", "--role", ROLE],
            [],
            "Error: S3 bucket 'nope-bucket'",
        ),
        (cleanup_endpoint_command, ["--endpoint-name", "x_y"], [], "Error: endpoint name 'x_y'"),
    ],
    ids=["no-role", "no-region", "no-bucket-to-upload", "no-bucket", "bad-name"],
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


# --- Without the SDK ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "args", "name"),
    [
        (deploy_command, ["--model-data", MODEL_DATA, "--role", ROLE], "scones deploy"),
        (train_sagemaker_command, ["--bucket", BUCKET, "--role", ROLE], "scones train-sagemaker"),
        (cleanup_endpoint_command, [], "scones cleanup-endpoint"),
    ],
    ids=["deploy", "train-sagemaker", "cleanup-endpoint"],
)
def test_commands_without_the_sdk_say_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: Any, args: list[str], name: str
) -> None:
    # Given a Python where `import sagemaker` fails
    fake_aws_environment(monkeypatch, tmp_path, REGION)
    monkeypatch.setitem(sys.modules, "sagemaker", None)
    # When a SageMaker command runs / Then one line says which command needs what, and how to install it
    result = CliRunner().invoke(command, args)
    assert (
        result.exit_code == 2
    )  # harness.cli.errors: a missing extra is unusable input, as for `scones train`
    assert result.stderr.strip() == (
        f"Error: {name} needs the SageMaker Python SDK (the `sagemaker` extra): {INSTALL_HINT}"
    )
    with pytest.raises(SdkNotInstalledError, match=re.escape(INSTALL_HINT)):
        deploy(boto3.Session(region_name=REGION), role_arn=ROLE, model_data=MODEL_DATA)


def test_the_cli_never_imports_the_sdk_to_start() -> None:
    # The SDK takes seconds to import: loading every `scones` command must not import it
    assert "sagemaker" not in packages_imported_by("from harness.cli import scones")
    from harness.cli import scones

    assert len(scones.commands) > 10
