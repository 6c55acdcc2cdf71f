"""The one error wrapper of the `scones` commands and its exit policy.

Every known failure becomes `Error: <one line>` on stderr, never a traceback. Exit status 2 when what
the user gave cannot be used (click's usage errors, `UnusableInputError` and a missing extra, a folder
or model `scones evaluate` cannot read, a path the file system refuses); 1 when the work itself failed
(AWS, the stack, the workflow's own errors).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError

from harness.aws import client_error_text
from harness.errors import ToolError
from scones_common.exceptions import SconesError

F = TypeVar("F", bound=Callable[..., Any])

USAGE_EXIT_STATUS = 2
FAILURE_EXIT_STATUS = 1


class CommandFailed(click.ClickException):
    def __init__(self, message: str, exit_code: int = FAILURE_EXIT_STATUS) -> None:
        super().__init__(one_line(message))
        self.exit_code = exit_code


def one_line(message: str) -> str:
    return " ".join(message.split())


def _unusable_input_errors() -> tuple[type[Exception], ...]:
    # The model's own input errors: model/ runs in SageMaker containers without harness, so its
    # errors cannot subclass UnusableInputError; they are mapped here instead.
    from model.evaluate import EvaluationInputError
    from model.inference import ModelArtifactError

    return (EvaluationInputError, ModelArtifactError)


def one_line_errors(command: F) -> F:
    """Known failures to `Error: <one line>` with the exit status above; click's own pass through."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except ToolError as exc:
            raise CommandFailed(str(exc), exc.exit_code) from exc
        except _unusable_input_errors() as exc:
            raise CommandFailed(str(exc), USAGE_EXIT_STATUS) from exc
        except SconesError as exc:
            raise CommandFailed(str(exc)) from exc
        except ClientError as exc:  # anything the modules did not map
            raise CommandFailed(f"AWS request failed: {client_error_text(exc)}") from exc
        except BotoCoreError as exc:
            raise CommandFailed(f"AWS request failed: {exc}") from exc
        except OSError as exc:  # the commands touch only paths the user named (or their defaults)
            raise CommandFailed(f"{type(exc).__name__}: {exc}", USAGE_EXIT_STATUS) from exc

    return wrapper  # type: ignore[return-value]
