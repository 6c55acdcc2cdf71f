"""The options the commands share: where they work (the local workflow or a deployed stack), the
region, --json, the log folder and the model folder."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from harness.aws import REGION_ENVIRONMENT, client_error_text
from harness.cli.errors import CommandFailed
from harness.ops.execution import WorkflowTarget

DEFAULT_LOG_DIR = Path(".scones") / "logs"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}

model_dir_option = click.option(
    "--model-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Serve this model (classifier.onnx + metadata.json) instead of model/artifacts.",
)


stack_option = click.option(
    "--stack",
    "stack_name",
    default=None,
    help="Work against this deployed CloudFormation stack (its outputs), with the default AWS credentials, "
    "instead of the local workflow.",
)
region_option = click.option(
    "--region",
    envvar=list(REGION_ENVIRONMENT),
    show_envvar=True,
    help="AWS region (with --stack: the stack's) [default: $AWS_REGION, $AWS_DEFAULT_REGION, then the AWS "
    "config file].",
)


def json_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--json, handed to the command as `as_json`; `what` says what is printed instead of tables."""
    return click.option("--json", "as_json", is_flag=True, help=f"{what} instead of tables.")


log_dir_option = click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_LOG_DIR,
    show_default=True,
    help="Local: where each function's JSON logs go.",
)


@contextmanager
def open_target(
    stack_name: str | None,
    region: str | None,
    *,
    threshold: float | None = None,
    log_dir: Path | None = None,
    model_dir: Path | None = None,
    parameter_overrides: dict[str, str] | None = None,
    tracing: bool = True,
) -> Iterator[WorkflowTarget]:
    """The local workflow, or the deployed stack named by --stack; errors of either become one message.

    Locally the functions run with X-Ray active, as deployed, so that each execution's page has its
    trace; `tracing=False` spares that cost where no page is written (scones load)."""
    if stack_name is None:
        from harness.local.workflow import LocalWorkflow, load_model  # moto: only without --stack

        with LocalWorkflow(
            threshold=threshold,
            log_dir=log_dir,
            model=load_model(model_dir),
            parameter_overrides=parameter_overrides,
            tracing=tracing,
        ) as workflow:
            yield workflow
        return
    local_only = {
        "--threshold": threshold is not None,
        "--model-dir": model_dir is not None,
        "--max-concurrency": bool(parameter_overrides),
    }
    given = [option for option, used in local_only.items() if used]
    if given:
        raise click.UsageError(
            f"{', '.join(given)}: not with --stack (a deployed stack uses its parameters and its endpoint; "
            "change them with sam deploy --parameter-overrides)"
        )
    from botocore.exceptions import BotoCoreError, ClientError

    from harness.ops.deployed import DeployedStack

    try:
        yield DeployedStack(stack_name, region=region)
    except ClientError as exc:
        raise CommandFailed(f"stack {stack_name}: {client_error_text(exc)}") from None
    except BotoCoreError as exc:
        raise CommandFailed(f"stack {stack_name}: {exc}") from None


@dataclass(frozen=True)
class TargetOptions:
    """Where run, batch and load work: the options every one of them takes."""

    stack_name: str | None
    region: str | None
    threshold: float | None
    log_dir: Path
    model_dir: Path | None

    @property
    def local(self) -> bool:
        return self.stack_name is None

    @property
    def where(self) -> str:
        return "the local workflow" if self.stack_name is None else f"stack {self.stack_name}"

    @property
    def logs(self) -> str:
        if self.stack_name is None:
            return f"Function logs: {self.log_dir}/"
        return f"Function logs: sam logs --stack-name {self.stack_name}"

    def open(
        self, parameter_overrides: dict[str, str] | None = None, *, tracing: bool = True
    ) -> ContextManager[WorkflowTarget]:
        return open_target(
            self.stack_name,
            self.region,
            threshold=self.threshold,
            log_dir=self.log_dir,
            model_dir=self.model_dir,
            parameter_overrides=parameter_overrides,
            tracing=tracing,
        )


def target_options(command: Callable[..., None]) -> Callable[..., None]:
    """--threshold, --log-dir, --model-dir, --stack and --region, handed to the command as `target`."""

    @functools.wraps(command)
    def with_target(
        *args: Any,
        stack_name: str | None,
        region: str | None,
        threshold: float | None,
        log_dir: Path,
        model_dir: Path | None,
        **kwargs: Any,
    ) -> None:
        command(*args, target=TargetOptions(stack_name, region, threshold, log_dir, model_dir), **kwargs)

    options = [
        click.option(
            "--threshold",
            type=click.FloatRange(0.0, 1.0),
            default=None,
            help="Local: override ConfidenceThreshold [default: the template's].",
        ),
        log_dir_option,
        model_dir_option,
        stack_option,
        region_option,
    ]
    for option in reversed(options):
        with_target = option(with_target)
    return with_target


def fresh_prefix(root: str) -> str:
    """A prefix no earlier run used, e.g. scones-run/20261126-101500-3f2a1c/."""
    return f"{root}/{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}/"
