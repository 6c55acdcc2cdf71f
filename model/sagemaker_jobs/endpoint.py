"""Deploy a model behind an endpoint with the SDK's resource classes: Model, EndpointConfig, Endpoint.

By default the model is this project's own: model.tar.gz built from model/artifacts by
`model.serving.package`, uploaded to S3 and served by the AWS PyTorch inference container through
`code/inference.py` (docs/SAGEMAKER.md, "What the endpoint serves"). `--algorithm builtin` serves a
model.tar.gz of the built-in image-classification algorithm instead.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError

from model.sagemaker_jobs.errors import (
    InvalidSettingError,
    NotFoundError,
    SageMakerJobError,
    aws_call,
    error_text,
    is_not_found,
)
from model.sagemaker_jobs.images import builtin_image_uri, pytorch_inference_uri
from model.sagemaker_jobs.sdk import prepare_boto_session, region_of, require_sdk
from model.sagemaker_jobs.validation import require_resource_name, require_role, s3_key, split_s3_uri
from model.sagemaker_jobs.waiting import Sleep, StatusCallback, wait_for_endpoint
from model.stage_data import DEFAULT_PREFIX, require_bucket

ENDPOINT_INSTANCE_TYPE = "ml.m5.xlarge"
DEFAULT_ENDPOINT_NAME = "scones-image-classifier"  # the stack's EndpointName default
VARIANT_NAME = "AllTraffic"
DATA_CAPTURE_PREFIX = "data_capture"
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)

Algorithm = Literal["pytorch", "builtin"]
ALGORITHMS: tuple[Algorithm, ...] = ("pytorch", "builtin")
# What the PyTorch inference toolkit reads: the module in /opt/ml/model/code it imports. inference.py
# is also its default; said explicitly so the model's description shows what serves it.
SERVING_PROGRAM = "inference.py"  # model.serving.package.ENTRY_POINT

# Data capture is not available on serverless endpoints. AWS, "Deploy models with Amazon SageMaker
# Serverless Inference", Feature exclusions
# (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html#serverless-endpoints-how-it-works-exclusions):
# "Some of the features currently available for SageMaker Real-time Inference are not supported for
# Serverless Inference, including GPUs, ..., data capture, multiple production variants, Model Monitor,
# and inference pipelines." So a serverless deploy omits DataCaptureConfig and says so. (The SDK does
# not check this combination, and moto accepts it.)
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
    them as CSV would store binary PNG bytes as text). Field names as the SDK's shapes spell them.
    """
    return {
        "enable_capture": True,
        "initial_sampling_percentage": 100,
        "destination_s3_uri": f"s3://{bucket}/{DATA_CAPTURE_PREFIX}",
        "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
        "capture_content_type_header": {"json_content_types": ["application/json"]},
    }


def serving_environment(algorithm: Algorithm) -> dict[str, str]:
    """The container's environment: the handler's entry point for the PyTorch container, nothing else."""
    return {"SAGEMAKER_PROGRAM": SERVING_PROGRAM} if algorithm == "pytorch" else {}


@dataclass(frozen=True)
class UploadedModel:
    uri: str
    sha256: str
    uploaded: bool  # False: the same bytes were already there


def upload_model_package(
    s3: Any, bucket: str, prefix: str = DEFAULT_PREFIX, model_dir: Path | None = None
) -> UploadedModel:
    """Build model.tar.gz from `model_dir` (default model/artifacts) and put it in S3.

    The key carries the archive's sha256 (s3://BUCKET/PREFIX/model/SHA256[:16]/model.tar.gz): the
    package is deterministic, so the same model and code land at the same key, and a new one never
    overwrites the artifact a running endpoint was created from.
    """
    # Imported here: the packager follows the handler's imports (onnxruntime's model.inference).
    from model.serving.package import ModelPackageError, build_model_package

    with tempfile.TemporaryDirectory(prefix="scones-model-") as directory:
        try:
            package = build_model_package(Path(directory) / "model.tar.gz", model_dir)
        except ModelPackageError as exc:
            raise NotFoundError(f"cannot build model.tar.gz: {exc}") from exc
        key = s3_key(prefix, "model", package.sha256[:16], "model.tar.gz")
        try:
            s3.head_object(Bucket=bucket, Key=key)
            return UploadedModel(f"s3://{bucket}/{key}", package.sha256, uploaded=False)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise SageMakerJobError(f"cannot check s3://{bucket}/{key}: {error_text(exc)}") from exc
        # S3 through boto3: S3 is not SageMaker, and the SDK's own upload (Session.upload_data) is
        # boto3's upload_file underneath.
        with aws_call(f"S3 PutObject s3://{bucket}/{key}"):
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=package.path.read_bytes(),
                ContentType="application/gzip",
                Metadata={"sha256": package.sha256},
            )
    return UploadedModel(f"s3://{bucket}/{key}", package.sha256, uploaded=True)


@dataclass
class Deployment:
    endpoint_name: str
    model_name: str
    config_name: str
    algorithm: Algorithm
    image: str
    model_data: str
    environment: dict[str, str]
    data_capture_uri: str | None
    serverless: bool
    uploaded: UploadedModel | None = None  # set when deploy built and uploaded model.tar.gz itself
    warnings: list[str] = field(default_factory=list)
    status: str = "Creating"


def _exists(get: Callable[..., Any], **kwargs: Any) -> bool:
    try:
        get(**kwargs)
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise SageMakerJobError(f"cannot check for existing resources: {error_text(exc)}") from exc
    return True


def deploy(
    session: boto3.session.Session,
    *,
    role_arn: str | None,
    algorithm: Algorithm = "pytorch",
    model_data: str | None = None,
    model_dir: Path | None = None,
    bucket: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    endpoint_name: str = DEFAULT_ENDPOINT_NAME,
    instance_type: str = ENDPOINT_INSTANCE_TYPE,
    instance_count: int = 1,
    serverless: ServerlessSettings | None = None,
    capture_bucket: str | None = None,
    image_uri: str | None = None,
    wait: bool = True,
    on_status: StatusCallback | None = None,
    poll_seconds: float = 30.0,
    sleep: Sleep = time.sleep,
) -> Deployment:
    """Create model, endpoint configuration (with data capture unless serverless) and endpoint.

    `model_data` (s3://.../model.tar.gz) is deployed as it is; without it, the project's model is
    packaged from `model_dir` and uploaded under s3://`bucket`/`prefix`/model/ (pytorch only). Every
    check runs, and nothing of the same name may exist, before anything is uploaded or created. The
    model and the configuration are named after the endpoint, so `cleanup_endpoint` finds them even
    when the endpoint itself was never created.
    """
    require_sdk("scones deploy")
    role = require_role(role_arn)
    require_resource_name(endpoint_name, "endpoint name")
    if algorithm not in ALGORITHMS:
        raise InvalidSettingError(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
    if serverless is None and instance_count < 1:
        raise InvalidSettingError(f"initial instance count must be at least 1, not {instance_count}")
    region = region_of(session)
    prepare_boto_session(session)
    s3 = session.client("s3")

    if model_data is not None:
        artifact_bucket, _ = split_s3_uri(model_data)
    elif algorithm == "builtin":
        raise InvalidSettingError(
            "--algorithm builtin serves a model trained by the built-in algorithm: give its --model-data"
        )
    elif not bucket:
        raise InvalidSettingError(
            "give --bucket (or $SCONES_BUCKET) to upload the model to, or --model-data s3://.../model.tar.gz"
        )
    else:
        artifact_bucket = bucket
    require_bucket(s3, artifact_bucket)
    capture_bucket = capture_bucket or artifact_bucket
    warnings: list[str] = []
    if serverless is not None:
        warnings.append(SERVERLESS_CAPTURE_WARNING)
    else:
        require_bucket(s3, capture_bucket)
    instance = None if serverless is not None else instance_type
    image = image_uri or (
        pytorch_inference_uri(region, instance) if algorithm == "pytorch" else builtin_image_uri(region)
    )

    from sagemaker.core.resources import Endpoint, EndpointConfig, Model
    from sagemaker.core.shapes import (
        ContainerDefinition,
        DataCaptureConfig,
        ProductionVariant,
        ProductionVariantServerlessConfig,
    )

    model_name = config_name = endpoint_name
    where = {"session": session, "region": region}
    for what, get, kwargs in (
        ("endpoint", Endpoint.get, {"endpoint_name": endpoint_name}),
        ("endpoint configuration", EndpointConfig.get, {"endpoint_config_name": config_name}),
        ("model", Model.get, {"model_name": model_name}),
    ):
        if _exists(get, **kwargs, **where):
            raise SageMakerJobError(
                f"a SageMaker {what} named {endpoint_name!r} already exists: run "
                f"`scones cleanup-endpoint --endpoint-name {endpoint_name}` or pick another --endpoint-name"
            )

    uploaded = None
    if model_data is None:
        uploaded = upload_model_package(s3, artifact_bucket, prefix, model_dir)
        model_data = uploaded.uri

    environment = serving_environment(algorithm)
    with aws_call("CreateModel"):
        Model.create(
            model_name=model_name,
            execution_role_arn=role,
            primary_container=ContainerDefinition(
                image=image,
                model_data_url=model_data,
                **({"environment": environment} if environment else {}),
            ),
            **where,
        )
    if serverless is not None:
        variant = ProductionVariant(
            variant_name=VARIANT_NAME,
            model_name=model_name,
            serverless_config=ProductionVariantServerlessConfig(
                memory_size_in_mb=serverless.memory_size_mb, max_concurrency=serverless.max_concurrency
            ),
        )
        capture = None
    else:
        variant = ProductionVariant(
            variant_name=VARIANT_NAME,
            model_name=model_name,
            instance_type=instance_type,
            initial_instance_count=instance_count,
            initial_variant_weight=1.0,
        )
        capture = data_capture_config(capture_bucket)
    with aws_call("CreateEndpointConfig"):
        EndpointConfig.create(
            endpoint_config_name=config_name,
            production_variants=[variant],
            **({"data_capture_config": DataCaptureConfig(**capture)} if capture else {}),
            **where,
        )
    with aws_call("CreateEndpoint"):
        endpoint = Endpoint.create(endpoint_name=endpoint_name, endpoint_config_name=config_name, **where)

    deployment = Deployment(
        endpoint_name=endpoint_name,
        model_name=model_name,
        config_name=config_name,
        algorithm=algorithm,
        image=image,
        model_data=model_data,
        environment=environment,
        data_capture_uri=capture["destination_s3_uri"] if capture else None,
        serverless=serverless is not None,
        uploaded=uploaded,
        warnings=warnings,
    )
    if wait:
        deployment.status = wait_for_endpoint(
            endpoint, on_status=on_status, poll_seconds=poll_seconds, sleep=sleep
        )
    return deployment
