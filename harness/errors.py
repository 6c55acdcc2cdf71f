"""The tool's own errors, apart from `scones_common.exceptions.SconesError`.

The layer's errors are the state machine's vocabulary (the ASL's Retry and Catch match their names);
these are what the `scones` command tells its user. Each carries its exit status, which
`harness.cli.errors.one_line_errors` applies: 2 when what the user gave cannot be used (as for a
usage error), 1 when the work itself failed.
"""

from __future__ import annotations

import importlib.util


class ToolError(Exception):
    """The `scones` command could not do its work; the message is the one line the user sees."""

    exit_code = 1


class UnusableInputError(ToolError):
    """A path, folder, model or option value that the user gave cannot be used."""

    exit_code = 2


class MissingExtraError(UnusableInputError):
    """The command needs an optional extra that is not installed (`pip install -e '.[NAME]'`)."""


def require_extra(extra: str, what: str, *modules: str) -> None:
    """MissingExtraError, before any long work, when one of `modules` cannot be imported:
    "<what> need(s) ...: pip install -e '.[<extra>]'"."""
    if any(importlib.util.find_spec(module) is None for module in modules):
        raise MissingExtraError(f"{what}: pip install -e '.[{extra}]'")
