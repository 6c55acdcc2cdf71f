"""Where the `scones` command writes: one console for results on stdout, one for status on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console


def console() -> Console:
    """Results, bound to the real stdout as it is now: the local Lambda runtime sends each function's
    stdout to its own log. Piped output (CI logs, `| tee`) gets a fixed width instead of 80 columns."""
    width = None if sys.stdout.isatty() else 160
    return Console(file=sys.stdout, highlight=False, width=width)


def status_console() -> Console:
    return Console(stderr=True)


@contextmanager
def status(message: str) -> Iterator[Callable[[str, float], None]]:
    """A spinner on stderr whose text follows the resource's status: call the callback with (status,
    seconds waited)."""
    with status_console().status(message) as spinner:

        def update(state: str, elapsed: float) -> None:
            spinner.update(f"{message}: {state} ({elapsed:.0f} s)")

        yield update


@contextmanager
def status_while(message: str, waiting: bool) -> Iterator[Callable[[str, float], None] | None]:
    """`status(message)` when the command waits for the resource; no callback when it does not."""
    if not waiting:
        yield None
        return
    with status(message) as update:
        yield update
