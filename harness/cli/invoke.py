"""`scones invoke`: one function's real handler with an event, like `sam local invoke`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from harness.cli.errors import one_line_errors
from harness.cli.options import log_dir_option
from harness.samples import demo_samples


@click.command("invoke")
@click.argument("function")
@click.option(
    "--event",
    "event_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A JSON event file, e.g. events/serialize_image_data.json",
)
@log_dir_option
@one_line_errors
def invoke(function: str, event_path: Path, log_dir: Path) -> None:
    """Invoke one function's real handler with an event, like `sam local invoke` without Docker.

    FUNCTION is a folder name (serialize_image_data) or a logical id (SerializeImageDataFunction).
    The bundled sample images are in the local bucket under test/.
    """
    try:
        event = json.loads(event_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{event_path} is not valid JSON: {exc}") from None
    from harness.local.workflow import LocalWorkflow

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
