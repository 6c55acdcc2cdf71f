"""`scones train-sagemaker`: a SageMaker training job, in script mode (the default model) or built-in."""

from __future__ import annotations

import click

from harness.aws import aws_session
from harness.cli.console import status_while
from harness.cli.errors import one_line_errors
from harness.cli.options import region_option
from model.sagemaker_jobs.sdk import require_sdk
from model.sagemaker_jobs.training import (
    BUILTIN_INSTANCE_TYPE,
    PYTORCH_INSTANCE_TYPE,
    ScriptHyperparameters,
    launch_builtin_training,
    launch_pytorch_training,
)
from model.stage_data import DEFAULT_PREFIX


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
@region_option
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
    with status_while("training job", wait) as on_status:
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
