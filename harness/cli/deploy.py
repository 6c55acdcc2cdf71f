"""`scones deploy`: the model behind a SageMaker endpoint, real-time with data capture or serverless."""

from __future__ import annotations

from pathlib import Path

import click

from harness.aws import aws_session
from harness.cli.console import status_while
from harness.cli.errors import one_line_errors
from harness.cli.options import region_option
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
from model.stage_data import DEFAULT_PREFIX


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
@region_option
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
    with status_while(f"endpoint {endpoint_name}", wait) as on_status:
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
