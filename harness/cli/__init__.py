"""The `scones` command: run the workflow locally, one function, the model's tools."""

from __future__ import annotations

import functools
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from harness.samples import Sample, demo_samples
from harness.workflow import TERMINAL_STATUSES, ExecutionResult, LocalWorkflow, WorkflowTarget, load_model

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
STATE_COLUMNS = (
    ("SerializeImageData", "serialize"),
    ("ClassifyImage", "classify"),
    ("FilterInferences", "filter"),
)
DEFAULT_LOG_DIR = Path(".scones") / "logs"

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
region_option = click.option("--region", default=None, help="With --stack: the stack's region.")


@contextmanager
def open_target(
    stack_name: str | None,
    region: str | None,
    *,
    threshold: float | None = None,
    log_dir: Path | None = None,
    model_dir: Path | None = None,
    parameter_overrides: dict[str, str] | None = None,
) -> Iterator[WorkflowTarget]:
    """The local workflow, or the deployed stack named by --stack; errors of either become one message."""
    if stack_name is None:
        with LocalWorkflow(
            threshold=threshold,
            log_dir=log_dir,
            model=load_model(model_dir),
            parameter_overrides=parameter_overrides,
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

    from harness.deployed import DeployedStack, DeployedStackError, client_error_message

    try:
        yield DeployedStack(stack_name, region=region)
    except DeployedStackError as exc:
        raise click.ClickException(str(exc)) from None
    except ClientError as exc:
        raise click.ClickException(f"stack {stack_name}: {client_error_message(exc)}") from None
    except BotoCoreError as exc:
        raise click.ClickException(f"stack {stack_name}: {exc}") from None


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

    def open(self, parameter_overrides: dict[str, str] | None = None) -> ContextManager[WorkflowTarget]:
        return open_target(
            self.stack_name,
            self.region,
            threshold=self.threshold,
            log_dir=self.log_dir,
            model_dir=self.model_dir,
            parameter_overrides=parameter_overrides,
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
        click.option(
            "--log-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=DEFAULT_LOG_DIR,
            show_default=True,
            help="Local: where each function's JSON logs go.",
        ),
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


def _console() -> Console:
    # Bound to the real stdout now: the harness sends each function's stdout to its own log.
    # Piped output (CI logs, `| tee`) gets a fixed width instead of rich's 80 columns.
    width = None if sys.stdout.isatty() else 160
    return Console(file=sys.stdout, highlight=False, width=width)


def result_record(image: str, result: ExecutionResult) -> dict[str, Any]:
    # A low-confidence image failed, but it was classified: report what the model said.
    output = result.output or result.state_output("ClassifyImage") or {}
    return {
        "image": image,
        "status": result.status,
        "error": result.error,
        "cause": result.message,
        "label": output.get("label"),
        "confidence": output.get("confidence"),
        "inferences": output.get("inferences"),
        "execution_arn": result.execution_arn,
        "seconds": round(result.seconds, 3),
        "states": {s.name: round(s.seconds, 3) for s in result.states},
    }


def _label_and_confidence(result: ExecutionResult) -> tuple[str, str]:
    """From the output, or, for a low-confidence failure, from the classification in its cause."""
    output = result.output or result.state_output("ClassifyImage") or {}
    if "label" in output and "confidence" in output:
        return str(output["label"]), f"{float(output['confidence']):.3f}"
    return "", ""


def render_table(rows: list[tuple[str, str | None, ExecutionResult]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("image", no_wrap=True)
    table.add_column("label")
    table.add_column("confidence", justify="right")
    table.add_column("outcome", overflow="fold")
    for _, heading in STATE_COLUMNS:
        table.add_column(f"{heading} ms", justify="right")
    table.add_column("total ms", justify="right")
    for image, expected, result in rows:
        label, confidence = _label_and_confidence(result)
        if result.status == "SUCCEEDED":
            outcome = "[green]SUCCEEDED[/green]"
            if expected and label != expected:
                outcome += f" [yellow](true class: {expected})[/yellow]"
        else:
            # The image is already in the first column: drop the s3:// suffix some messages carry.
            message = (result.message or "").split(" (s3://")[0]
            message = message if len(message) <= 70 else message[:67] + "..."
            outcome = f"[red]{result.status}[/red] {result.error}: {message}"
        timings = {s.name: s.seconds for s in result.states}
        cells = [f"{timings[name] * 1000:.0f}" if name in timings else "-" for name, _ in STATE_COLUMNS]
        table.add_row(image, label, confidence, outcome, *cells, f"{result.seconds * 1000:.0f}")
    return table


def _run_samples(
    workflow: LocalWorkflow, samples: Iterable[Sample], prefix: str
) -> list[tuple[str, str | None, ExecutionResult]]:
    rows = []
    for sample in samples:
        key = workflow.upload(sample.data, f"{prefix}{sample.name}")
        rows.append((sample.name, sample.expected, workflow.run(key)))
    return rows


def _emit(rows: list[tuple[str, str | None, ExecutionResult]], as_json: bool, title: str, logs: str) -> None:
    console = _console()
    if as_json:
        for image, _, result in rows:
            click.echo(json.dumps(result_record(image, result)))
        return
    console.print(render_table(rows, title))
    counts: dict[str, int] = {}
    for *_, result in rows:
        counts[result.status] = counts.get(result.status, 0) + 1
    unfinished = sum(n for status, n in counts.items() if status not in TERMINAL_STATUSES)
    console.print(
        f"{len(rows)} executions: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + (" (every one reached a terminal state). " if not unfinished else f" ({unfinished} not finished). ")
        + logs
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def scones() -> None:
    """Scones Unlimited image classification: run the SAM workflow locally, train and deploy its model."""


@scones.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
@click.option(
    "--threshold", type=click.FloatRange(0.0, 1.0), default=None, help="Override ConfidenceThreshold."
)
@click.option("--log-dir", type=click.Path(path_type=Path), default=DEFAULT_LOG_DIR, show_default=True)
@model_dir_option
def demo(as_json: bool, threshold: float | None, log_dir: Path, model_dir: Path | None) -> None:
    """Run the bundled sample images through the local workflow and print the outcomes."""
    started = time.perf_counter()
    with LocalWorkflow(threshold=threshold, log_dir=log_dir, model=load_model(model_dir)) as workflow:
        setup = time.perf_counter() - started
        rows = _run_samples(workflow, demo_samples(), "test/")
    title = (
        f"scones demo: {len(rows)} images through the real state machine on moto "
        f"(threshold {workflow.stack.parameters['ConfidenceThreshold']}, set-up {setup:.1f} s)"
    )
    _emit(rows, as_json, title, f"Function logs: {log_dir}/")


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            )
        else:
            files.append(path)
    return files


@scones.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
@target_options
def run(paths: tuple[Path, ...], as_json: bool, target: TargetOptions) -> None:
    """Upload each image (or every image under a folder) and run one execution per image.

    Locally by default; with --stack, in the deployed stack (uploaded under scones-run/, outside the
    upload prefix, so that only the executions started here run). Exits 0 when every execution
    reached a terminal state, whatever that state.
    """
    files = _expand(paths)
    if not files:
        raise click.UsageError("no image files found in the paths given")
    prefix = "uploads/" if target.local else fresh_prefix("scones-run")
    with target.open() as workflow:
        rows: list[tuple[str, str | None, ExecutionResult]] = []
        for index, path in enumerate(files):
            key = workflow.upload(path.read_bytes(), f"{prefix}{index:05d}/{path.name}")
            rows.append((str(path), None, workflow.run(key)))
    where = "" if target.local else f" on {target.where}"
    _emit(rows, as_json, f"scones run: {len(rows)} images{where}", target.logs)
    if any(result.status not in TERMINAL_STATUSES for *_, result in rows):
        sys.exit(1)


@scones.command()
@click.argument("function")
@click.option(
    "--event",
    "event_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A JSON event file, e.g. events/serialize_image_data.json",
)
@click.option("--log-dir", type=click.Path(path_type=Path), default=DEFAULT_LOG_DIR, show_default=True)
def invoke(function: str, event_path: Path, log_dir: Path) -> None:
    """Invoke one function's real handler with an event, like `sam local invoke` without Docker.

    FUNCTION is a folder name (serialize_image_data) or a logical id (SerializeImageDataFunction).
    The bundled sample images are in the local bucket under test/.
    """
    try:
        event = json.loads(event_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{event_path} is not valid JSON: {exc}") from None
    with LocalWorkflow(log_dir=log_dir) as workflow:
        try:
            workflow.stack.function_by_name(function)
        except KeyError as exc:
            raise click.UsageError(str(exc.args[0])) from None
        for sample in demo_samples():
            workflow.upload(sample.data, f"test/{sample.name}")
        payload, function_error = workflow.invoke_function(function, event)
    click.echo(json.dumps(payload, indent=2))
    if function_error:
        click.echo(f"{payload.get('errorType')}: {payload.get('errorMessage')}", err=True)
        sys.exit(1)


@scones.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per case instead of tables.")
@click.option("--markdown", is_flag=True, help="Markdown tables, as in docs/RELIABILITY.md.")
@click.option("--log-dir", type=click.Path(path_type=Path), default=DEFAULT_LOG_DIR, show_default=True)
def reliability(as_json: bool, markdown: bool, log_dir: Path) -> None:
    """Run every catalogued bad input and fault through the local workflow; print the outcomes.

    Exits 1 if any case ends other than as catalogued (harness/cases.py).
    """
    from harness.reliability import rows_as_json, rows_as_markdown, run_catalogue

    rows = run_catalogue(log_dir)
    if as_json:
        click.echo(rows_as_json(rows))
    elif markdown:
        click.echo(rows_as_markdown(rows))
    else:
        console = _console()
        for kind, title in (
            ("input", "Bad and awkward inputs"),
            ("event", "Malformed state machine input"),
            ("fault", "Injected faults (attempts counted from the execution history)"),
        ):
            table = Table(title=title, title_justify="left")
            for column in ("case", "expected", "status", "error", "attempts", "ok", "reason"):
                table.add_column(column, overflow="fold")
            for row in (r for r in rows if r.kind == kind):
                table.add_row(
                    row.name,
                    row.expected,
                    row.status,
                    row.error or "",
                    "" if row.attempts is None else str(row.attempts),
                    "[green]yes[/green]" if row.passed else "[red]NO[/red]",
                    row.reason,
                )
            console.print(table)
        failed = [row.name for row in rows if not row.passed]
        console.print(
            f"{len(rows)} cases: {len(rows) - len(failed)} as catalogued, {len(failed)} not"
            + (f": {', '.join(failed)}" if failed else "")
        )
    if any(not row.passed for row in rows):
        sys.exit(1)


def _register_optional_commands() -> None:
    """Commands that live with the model code (evaluate, train, stage-data, train-sagemaker, deploy...)."""
    from model.cli import model_commands

    for command in model_commands:
        scones.add_command(command)
    from model.sagemaker_cli import sagemaker_commands

    for command in sagemaker_commands:
        scones.add_command(command)

    from harness.batch_cli import batch_command
    from harness.cleanup_cli import cleanup_command
    from harness.load_cli import load_command
    from monitor.cli import monitor_command

    scones.add_command(monitor_command)
    scones.add_command(cleanup_command)
    scones.add_command(batch_command)
    scones.add_command(load_command)


def main() -> None:
    _register_optional_commands()
    scones(prog_name="scones")
