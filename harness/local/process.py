"""What the local workflow changes in this Python process, and putting all of it back.

To run several Lambda functions in one process as if each had its own, the harness replaces
`os.environ` with a thread-scoped overlay (each function sees its own variables) and `sys.stdout` with
a router (each function's prints go to its log file), and it corrects moto's Step Functions engine
(`harness.local.moto_engine`). Workflows and stand-alone `LocalFunction`s may be nested or run side by
side, so the changes are counted: the first user makes them, the last one out undoes them, and the
process is left as it was found.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_users = 0
_moto_corrected = False
_undo: list[Callable[[], None]] = []  # a stack: the last change made is the first undone


@contextmanager
def local_process(*, moto: bool = False) -> Iterator[None]:
    """Inside: the thread-scoped environment and stdout router are installed (and moto's corrections,
    when `moto`); on leaving the last such block, everything is restored."""
    global _users, _moto_corrected
    with _lock:
        if _users == 0:
            _undo.extend(_install_environment_and_stdout())
        if moto and not _moto_corrected:
            _undo.extend(_install_moto())
            _moto_corrected = True
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                while _undo:
                    _undo.pop()()
                _moto_corrected = False


def _install_environment_and_stdout() -> list[Callable[[], None]]:
    from harness.local.lambda_runtime import StdoutRouter, ThreadEnvironment

    environ = os.environ
    os.environ = ThreadEnvironment(environ)  # type: ignore[assignment]  # noqa: B003 (a wrapper, not a clear)
    sys.stdout = StdoutRouter(sys.stdout)

    def restore_environ() -> None:
        os.environ = environ  # noqa: B003

    def restore_stdout() -> None:
        # Normally the router installed above; pytest may have swapped stdout since, and the runtime
        # then wrapped the new one: unwrap whichever router is there.
        if isinstance(sys.stdout, StdoutRouter):
            sys.stdout = sys.stdout.fallback

    return [restore_environ, restore_stdout]


def _install_moto() -> list[Callable[[], None]]:
    from harness.local import moto_engine

    # moto logs every failed state at ERROR; the execution history already records it.
    logger = logging.getLogger("moto.stepfunctions.parser")
    level = logger.level
    logger.setLevel(logging.CRITICAL)

    def restore_level() -> None:
        logger.setLevel(level)

    return [restore_level, *moto_engine.install()]
