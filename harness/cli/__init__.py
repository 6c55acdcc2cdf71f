"""The `scones` command: the one registry of its commands, one module each under harness/cli/.

Importing this package registers every command (tests use `from harness.cli import scones`). Each
command module imports click and rich at the top, and what its work needs (moto, onnxruntime, the
SageMaker SDK) only inside the command, so `scones --help` and `--stack` runs never load moto.
"""

from __future__ import annotations

import click

from harness.cli.batch import batch_command
from harness.cli.cleanup import cleanup_command
from harness.cli.cleanup_endpoint import cleanup_endpoint_command
from harness.cli.demo import demo
from harness.cli.deploy import deploy_command
from harness.cli.evaluate import evaluate
from harness.cli.graph import graph_command
from harness.cli.invoke import invoke
from harness.cli.load import load_command
from harness.cli.monitor import monitor_command
from harness.cli.reliability import reliability
from harness.cli.run import run
from harness.cli.stage_data import stage_data_command
from harness.cli.train import train
from harness.cli.train_sagemaker import train_sagemaker_command
from harness.cli.view import view_command

COMMANDS: tuple[click.Command, ...] = (
    demo,
    run,
    view_command,
    graph_command,
    invoke,
    batch_command,
    load_command,
    reliability,
    monitor_command,
    evaluate,
    train,
    stage_data_command,
    train_sagemaker_command,
    deploy_command,
    cleanup_endpoint_command,
    cleanup_command,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def scones() -> None:
    """Scones Unlimited image classification: run the SAM workflow locally, train and deploy its model."""


for _command in COMMANDS:
    scones.add_command(_command)


def main() -> None:
    scones(prog_name="scones")
