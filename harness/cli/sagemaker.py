"""`scones stage-data`, `train-sagemaker`, `deploy`, `cleanup-endpoint`: the SageMaker side of the model."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from model.sagemaker_jobs.cleanup import cleanup_endpoint
from model.sagemaker_jobs.endpoint import (
    ALGORITHMS,
    DEFAULT_ENDPOINT_NAME,
    ENDPOINT_INSTANCE_TYPE,
    SERVERLESS_MEMORY_SIZES,
    Algorithm,
    ServerlessSettings,
    deploy,
)
from model.sagemaker_jobs.sdk import require_sdk
from model.sagemaker_jobs.training import (
    BUILTIN_INSTANCE_TYPE,
    PYTORCH_INSTANCE_TYPE,
    ScriptHyperparameters,
    launch_builtin_training,
    launch_pytorch_training,
)
from model.sagemaker_jobs.waiting import StatusCallback
from model.stage_data import DEFAULT_CLASSES, DEFAULT_PREFIX, aws_session, parse_classes, stage
from scones_common.exceptions import SconesError

F = TypeVar("F", bound=Callable[..., Any])

_REGION_ENV = ["AWS_REGION", "AWS_DEFAULT_REGION"]
_stderr = Console(stderr=True)


def one_line_errors(command: F) -> F:
    """Every known failure becomes `Error: <one line>` on stderr and exit status 1, no traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SconesError as exc:
            raise click.ClickException(_one_line(str(exc))) from exc
        except (ClientError, BotoCoreError) as exc:  # anything the modules did not map
            raise click.ClickException(_one_line(f"AWS request failed: {exc}")) from exc
        except OSError as exc:
            raise click.ClickException(_one_line(f"{type(exc).__name__}: {exc}")) from exc

    return wrapper  # type: ignore[return-value]


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _region_option(command: F) -> F:
    return click.option(
        "--region",
        envvar=_REGION_ENV,
        show_envvar=True,
        help="AWS region [default: $AWS_REGION, $AWS_DEFAULT_REGION, then the AWS config file].",
    )(command)


@contextmanager
def _status(message: str) -> Iterator[StatusCallback]:
    """A spinner on stderr whose text follows the resource's status."""
    with _stderr.status(message) as status:

        def update(state: str, elapsed: float) -> None:
            status.update(f"{message}: {state} ({elapsed:.0f} s)")

        yield update


# --- stage-data ---------------------------------------------------------------------------------------


@click.command("stage-data")
@click.option(
    "--tarball",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A local cifar-100-python.tar.gz. Without it the official tarball is downloaded into --out.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/cifar100"),
    show_default=True,
    help="Where to write train/, test/, train.lst and test.lst.",
)
@click.option("--bucket", envvar="SCONES_BUCKET", show_envvar=True, help="S3 bucket for the staged data.")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="S3 key prefix.")
@click.option(
    "--classes",
    default=",".join(DEFAULT_CLASSES),
    show_default=True,
    help="CIFAR-100 fine label names, comma-separated; the label of each is its position here.",
)
@click.option("--no-upload", is_flag=True, help="Only write the local files.")
@_region_option
@one_line_errors
def stage_data_command(
    tarball: Path | None,
    out_dir: Path,
    bucket: str | None,
    prefix: str,
    classes: str,
    no_upload: bool,
    region: str | None,
) -> None:
    """Extract CIFAR-100 classes as PNGs plus .lst manifests, and upload them for SageMaker."""
    if not no_upload and not bucket:
        raise click.UsageError("give --bucket (or $SCONES_BUCKET), or --no-upload")
    staged, report = stage(
        out_dir=out_dir,
        tarball=tarball,
        classes=parse_classes(classes),
        bucket=bucket,
        prefix=prefix,
        region=region,
        upload=not no_upload,
    )
    labels = ", ".join(f"{index}={name}" for index, name in enumerate(staged.classes))
    click.echo(f"classes: {labels}")
    for split in ("train", "test"):
        click.echo(f"{split}: {staged.count(split)} images, manifest {staged.manifest(split)}")
    if report is not None:
        click.echo(
            f"s3://{bucket}/{prefix.strip('/')}/: {len(report.uploaded)} uploaded, "
            f"{len(report.skipped)} already there"
        )


# --- train-sagemaker ----------------------------------------------------------------------------------


@click.command("train-sagemaker")
@click.option(
    "--algorithm",
    type=click.Choice(["builtin", "pytorch"]),
    default="builtin",
    show_default=True,
    help="builtin: SageMaker's image-classification algorithm; pytorch: model/train.py in script mode.",
)
@click.option(
    "--bucket", required=True, envvar="SCONES_BUCKET", show_envvar=True, help="Bucket of the staged data."
)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="S3 key prefix of the staged data.")
@click.option("--role", envvar="SAGEMAKER_ROLE_ARN", show_envvar=True, help="SageMaker execution role ARN.")
@click.option(
    "--instance-type",
    help=f"[default: {BUILTIN_INSTANCE_TYPE} for builtin (GPU), {PYTORCH_INSTANCE_TYPE} for pytorch (CPU)]",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    help="[default: 30 for builtin; for pytorch the recipe's, as another value ships the model uncalibrated]",
)
@click.option("--output-path", help="S3 URI for model.tar.gz [default: s3://BUCKET/PREFIX/output].")
@click.option("--wait/--no-wait", default=False, show_default=True, help="Wait for the job to finish.")
@_region_option
@one_line_errors
def train_sagemaker_command(
    algorithm: str,
    bucket: str,
    prefix: str,
    role: str | None,
    instance_type: str | None,
    epochs: int | None,
    output_path: str | None,
    wait: bool,
    region: str | None,
) -> None:
    """Start a SageMaker training job on the staged data (billed while it runs). Needs the sagemaker extra."""
    require_sdk("scones train-sagemaker")
    session = aws_session(region)
    with _status("training job") if wait else _no_status() as on_status:
        if algorithm == "builtin":
            launch = launch_builtin_training(
                session,
                role_arn=role,
                bucket=bucket,
                prefix=prefix,
                instance_type=instance_type or BUILTIN_INSTANCE_TYPE,
                epochs=epochs or 30,
                output_path=output_path,
                wait=wait,
                on_status=on_status,
            )
        else:
            launch = launch_pytorch_training(
                session,
                role_arn=role,
                bucket=bucket,
                prefix=prefix,
                instance_type=instance_type or PYTORCH_INSTANCE_TYPE,
                hyperparameters=ScriptHyperparameters(epochs=epochs),
                output_path=output_path,
                wait=wait,
                on_status=on_status,
            )
    state = "completed" if launch.status == "Completed" else "started"
    click.echo(f"training job {launch.job_name} {state}")
    click.echo(f"model data: {launch.model_data}")
    if not wait:
        click.echo(f"follow it: aws sagemaker describe-training-job --training-job-name {launch.job_name}")
    if algorithm == "builtin":
        click.echo(f"then: scones deploy --algorithm builtin --model-data {launch.model_data}")
    else:
        # The job saves the model files only; deploy packages them with the serving code.
        click.echo(
            f"then: aws s3 cp {launch.model_data} . && mkdir trained && tar -xzf model.tar.gz -C trained "
            "&& scones deploy --model-dir trained"
        )


@contextmanager
def _no_status() -> Iterator[StatusCallback | None]:
    yield None


# --- deploy -----------------------------------------------------------------------------------------------


@click.command("deploy")
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS),
    default="pytorch",
    show_default=True,
    help="pytorch: this project's model, served by its handler in the PyTorch inference container; "
    "builtin: a model trained by the built-in image-classification algorithm (needs --model-data).",
)
@click.option(
    "--model-data",
    help="S3 URI of a model.tar.gz to deploy as it is [default: build one from --model-dir and upload it].",
)
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The model to package when no --model-data is given (metadata.json and the files it names) "
    "[default: model/artifacts].",
)
@click.option(
    "--bucket",
    envvar="SCONES_BUCKET",
    show_envvar=True,
    help="Bucket to upload model.tar.gz to (s3://BUCKET/PREFIX/model/SHA256/) when no --model-data is given.",
)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="S3 key prefix for the upload.")
@click.option("--role", envvar="SAGEMAKER_ROLE_ARN", show_envvar=True, help="SageMaker execution role ARN.")
@click.option("--endpoint-name", default=DEFAULT_ENDPOINT_NAME, show_default=True)
@click.option("--instance-type", default=ENDPOINT_INSTANCE_TYPE, show_default=True)
@click.option("--instance-count", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--serverless", is_flag=True, help="Serverless Inference instead of instances (no data capture)."
)
@click.option(
    "--memory-size",
    type=click.Choice([str(size) for size in SERVERLESS_MEMORY_SIZES]),
    default="2048",
    show_default=True,
    help="Serverless memory in MB.",
)
@click.option(
    "--max-concurrency", type=click.IntRange(1, 200), default=5, show_default=True, help="Serverless."
)
@click.option(
    "--capture-bucket",
    help="Bucket for data capture (s3://BUCKET/data_capture) [default: the model.tar.gz's bucket].",
)
@click.option(
    "--image-uri",
    help="Inference image [default: the PyTorch 2.6 inference image (pytorch), or the built-in "
    "image-classification image (builtin), for the region].",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until InService.")
@_region_option
@one_line_errors
def deploy_command(
    algorithm: Algorithm,
    model_data: str | None,
    model_dir: Path | None,
    bucket: str | None,
    prefix: str,
    role: str | None,
    endpoint_name: str,
    instance_type: str,
    instance_count: int,
    serverless: bool,
    memory_size: str,
    max_concurrency: int,
    capture_bucket: str | None,
    image_uri: str | None,
    wait: bool,
    region: str | None,
) -> None:
    """Create model, endpoint configuration and endpoint (billed until cleanup-endpoint).

    Needs the sagemaker extra. By default the model is this project's own (model/artifacts, or
    --model-dir), packaged with its serving code as model.tar.gz and uploaded to S3 first.
    """
    require_sdk("scones deploy")
    session = aws_session(region)
    with _status(f"endpoint {endpoint_name}") if wait else _no_status() as on_status:
        deployment = deploy(
            session,
            role_arn=role,
            algorithm=algorithm,
            model_data=model_data,
            model_dir=model_dir,
            bucket=bucket,
            prefix=prefix,
            endpoint_name=endpoint_name,
            instance_type=instance_type,
            instance_count=instance_count,
            serverless=ServerlessSettings(int(memory_size), max_concurrency) if serverless else None,
            capture_bucket=capture_bucket,
            image_uri=image_uri,
            wait=wait,
            on_status=on_status,
        )
    for warning in deployment.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if deployment.uploaded is not None:
        state = "uploaded" if deployment.uploaded.uploaded else "already there"
        click.echo(f"model.tar.gz ({state}): {deployment.model_data}  sha256 {deployment.uploaded.sha256}")
    click.echo(f"image: {deployment.image}")
    click.echo(f"created model {deployment.model_name} and endpoint configuration {deployment.config_name}")
    click.echo(f"endpoint {deployment.endpoint_name}: {deployment.status}")
    if deployment.data_capture_uri:
        click.echo(f"data capture: {deployment.data_capture_uri}/{deployment.endpoint_name}/AllTraffic/")
    click.echo(f"SAM stack parameter: EndpointName={deployment.endpoint_name}")
    click.echo(f"  sam deploy --parameter-overrides EndpointName={deployment.endpoint_name}")


# --- cleanup-endpoint -------------------------------------------------------------------------------------


@click.command("cleanup-endpoint")
@click.option("--endpoint-name", default=DEFAULT_ENDPOINT_NAME, show_default=True)
@_region_option
@one_line_errors
def cleanup_endpoint_command(endpoint_name: str, region: str | None) -> None:
    """Delete the endpoint, its endpoint configuration and its model. Needs the sagemaker extra."""
    require_sdk("scones cleanup-endpoint")
    report = cleanup_endpoint(aws_session(region), endpoint_name)
    for item in report.deleted:
        click.echo(f"deleted {item}")
    for item in report.missing:
        click.echo(f"not found (nothing to delete): {item}")
    if not report.deleted:
        click.echo(f"nothing named {endpoint_name!r} was left to delete")


sagemaker_commands: list[click.Command] = [
    stage_data_command,
    train_sagemaker_command,
    deploy_command,
    cleanup_endpoint_command,
]


@click.group()
def main() -> None:
    """The SageMaker commands on their own (`python -m model.sagemaker_cli`)."""


for _command in sagemaker_commands:
    main.add_command(_command)

if __name__ == "__main__":
    main()
