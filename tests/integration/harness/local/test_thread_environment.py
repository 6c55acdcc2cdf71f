"""The harness's per-thread os.environ: a handler's variables never touch the process's environment."""

from __future__ import annotations

import os
import threading

import pytest

from harness.local.lambda_runtime import ThreadEnvironment


@pytest.fixture
def environ() -> ThreadEnvironment:
    return ThreadEnvironment({"SHARED": "process", "AWS_REGION": "us-east-1"})


def test_a_scope_overlays_reads_and_keeps_writes_to_itself(environ: ThreadEnvironment) -> None:
    with environ.scoped({"AWS_LAMBDA_FUNCTION_NAME": "serialize", "SHARED": "function"}):
        assert environ["AWS_LAMBDA_FUNCTION_NAME"] == "serialize"
        assert environ["SHARED"] == "function"
        assert environ.get("AWS_REGION") == "us-east-1"
        environ["SET_BY_HANDLER"] = "1"
        del environ["AWS_REGION"]
        assert "AWS_REGION" not in environ
        assert sorted(environ) == ["AWS_LAMBDA_FUNCTION_NAME", "SET_BY_HANDLER", "SHARED"]
        with pytest.raises(KeyError):
            del environ["NEVER_SET"]
    assert dict(environ) == {"SHARED": "process", "AWS_REGION": "us-east-1"}
    assert environ.base == {"SHARED": "process", "AWS_REGION": "us-east-1"}


def test_other_threads_see_the_process_environment_while_a_scope_is_open(
    environ: ThreadEnvironment,
) -> None:
    inside = threading.Event()
    release = threading.Event()

    def handler() -> None:
        with environ.scoped({"AWS_LAMBDA_FUNCTION_NAME": "classify"}):
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=handler)
    thread.start()
    assert inside.wait(5)
    try:
        assert "AWS_LAMBDA_FUNCTION_NAME" not in environ
        assert dict(environ) == {"SHARED": "process", "AWS_REGION": "us-east-1"}
    finally:
        release.set()
        thread.join(5)


def test_outside_any_scope_it_is_the_process_environment(environ: ThreadEnvironment) -> None:
    environ["NEW"] = "x"
    del environ["SHARED"]
    assert environ.base == {"AWS_REGION": "us-east-1", "NEW": "x"}
    assert environ.copy() == {"AWS_REGION": "us-east-1", "NEW": "x"}


def test_the_workflow_installs_it_and_os_getenv_reads_the_overlay() -> None:
    from harness.local.lambda_runtime import thread_environment
    from harness.local.process import local_process

    with local_process():
        installed = thread_environment()
        assert os.environ is installed
        with installed.scoped({"SCONES_ENV_PROBE": "visible"}):
            assert os.getenv("SCONES_ENV_PROBE") == "visible"
        assert os.getenv("SCONES_ENV_PROBE") is None
    assert os.environ is not installed
