"""Run a function's real handler the way the Lambda runtime does: its own environment, its error shape."""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.local.process import local_process
from harness.local.template import FunctionSpec
from harness.ops.view.trace import new_trace_root, trace_root

# AWS Lambda quotas the workflow can run into.
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024  # request and response of a synchronous invoke

# Handlers share one process and Powertools' module-level state (the Metrics buffer): one invocation
# at a time. Their environment (ThreadEnvironment) and stdout (StdoutRouter) are per thread.
_INVOKE_LOCK = threading.RLock()
# The shared layer keeps per-process state (its Logger, bound to stdout and the service name at import):
# each function gets its own copy of it, as its own process would. Powertools itself is shared; its
# Metrics buffer is flushed at the end of every invocation and invocations never overlap.
_PER_FUNCTION_MODULES = ("scones_common",)


@contextlib.contextmanager
def _private_modules() -> Iterator[None]:
    def ours(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in _PER_FUNCTION_MODULES)

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    try:
        yield
    finally:
        for name in [n for n in sys.modules if ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)


def wait_for_running_invocations(timeout_seconds: float) -> bool:
    """Block until no handler is running (a timed-out one may still be), or until the timeout."""
    if _INVOKE_LOCK.acquire(timeout=timeout_seconds):
        _INVOKE_LOCK.release()
        return True
    return False


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class InvocationResult:
    payload: bytes
    function_error: str | None  # "Unhandled" like Lambda, or None
    duration_ms: float
    logs: str
    trace_header: str = ""  # the invocation's _X_AMZN_TRACE_ID (Root, Parent: its segment's id, Sampled)
    started_at: float = 0.0  # epoch seconds, as X-Ray records times
    ended_at: float = 0.0

    def json(self) -> Any:
        return json.loads(self.payload)


class _LogSink(io.TextIOBase):
    """Where a function's stdout goes: its own log (the local CloudWatch log group)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._buffer = io.StringIO()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer.write(text)
        if self._path is not None:
            with self._path.open("a", encoding="utf-8") as handle:
                handle.write(text)
        return len(text)

    def take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer = io.StringIO()
        return text


class ThreadEnvironment(MutableMapping[str, str]):
    """os.environ for a process that hosts several functions: each invocation sees its own variables.

    A Lambda function owns its process's environment. Here the handlers share one process with moto's
    execution threads, so swapping os.environ per invocation would mutate it under those threads (a
    client being created elsewhere iterates it and fails with a key removed mid-iteration). Instead the
    process's environment stays as it is, and a thread running a handler reads it through an overlay of
    that function's variables; what the handler sets or deletes stays in its overlay. Python code that
    reads os.environ or os.getenv sees the overlay; C code calling getenv(3) sees the process's own.
    """

    _DELETED = object()

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base
        self._local = threading.local()

    def _overlay(self) -> dict[str, Any] | None:
        return getattr(self._local, "overlay", None)

    @contextlib.contextmanager
    def scoped(self, variables: dict[str, str]) -> Iterator[None]:
        """Inside: this thread sees `variables` over the process's environment."""
        previous = self._overlay()
        self._local.overlay = {**(previous or {}), **variables}
        try:
            yield
        finally:
            self._local.overlay = previous

    def __getitem__(self, key: str) -> str:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is self._DELETED:
                raise KeyError(key)
            return str(value)
        return self.base[key]

    def __setitem__(self, key: str, value: str) -> None:
        overlay = self._overlay()
        if overlay is None:
            self.base[key] = value
        else:
            overlay[key] = value

    def __delitem__(self, key: str) -> None:
        overlay = self._overlay()
        if overlay is None:
            del self.base[key]
            return
        if key not in self:
            raise KeyError(key)
        overlay[key] = self._DELETED

    def __iter__(self) -> Iterator[str]:
        overlay = self._overlay()
        if overlay is None:
            yield from list(self.base)
            return
        yield from (key for key in list(self.base) if key not in overlay)
        yield from (key for key, value in list(overlay.items()) if value is not self._DELETED)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)

    def __repr__(self) -> str:
        return f"ThreadEnvironment({dict(self)!r})"


def thread_environment() -> ThreadEnvironment:
    """The thread-scoped os.environ that `harness.local.process.local_process` installed."""
    environ = os.environ
    if not isinstance(environ, ThreadEnvironment):
        raise RuntimeError("no thread-scoped environment: run functions inside local_process()")
    return environ


class StdoutRouter(io.TextIOBase):
    """sys.stdout for the process: each thread's writes go to the sink it set, others to the terminal.

    A plain swap of sys.stdout would leak: a handler still running after its state timed out would
    keep writing into whatever the main thread prints.
    """

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        self.local = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        sink = getattr(self.local, "sink", None)
        return int((sink or self.fallback).write(text))

    def flush(self) -> None:
        (getattr(self.local, "sink", None) or self.fallback).flush()

    def isatty(self) -> bool:
        return bool(getattr(self.fallback, "isatty", lambda: False)())


def _router() -> StdoutRouter:
    """The router local_process installed; again if something has replaced sys.stdout since (pytest
    swaps it between a test's phases). local_process unwraps whichever router is there at the end."""
    if not isinstance(sys.stdout, StdoutRouter):
        sys.stdout = StdoutRouter(sys.stdout)
    return sys.stdout


@contextlib.contextmanager
def _stdout_to(sink: Any) -> Iterator[None]:
    router = _router()
    previous = getattr(router.local, "sink", None)
    router.local.sink = sink
    try:
        yield
    finally:
        router.local.sink = previous


class LocalFunction:
    """One Lambda function from template.yaml, loaded from its CodeUri as the runtime would."""

    def __init__(
        self, spec: FunctionSpec, log_dir: Path | None = None, environment: dict[str, str] | None = None
    ):
        self.spec = spec
        self.environment = {
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            # No X-Ray daemon here: with a function name set, Tracer would otherwise try to reach one.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            **spec.environment,
            **(environment or {}),
        }
        self._sink = _LogSink(log_dir / f"{spec.code_dir.name}.log" if log_dir else None)
        self._module: ModuleType | None = None
        self._init_error: BaseException | None = None
        self.cold_starts = 0

    def _load(self) -> ModuleType:
        module_file, _, _ = self.spec.handler.rpartition(".")
        path = self.spec.code_dir / f"{module_file.replace('.', '/')}.py"
        name = f"scones_function_{self.spec.code_dir.name}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load handler module {path}")
        module = importlib.util.module_from_spec(module_spec)
        # Lambda puts the function's own folder first on sys.path.
        sys.path.insert(0, str(self.spec.code_dir))
        try:
            with _private_modules():
                module_spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(self.spec.code_dir))
        self.cold_starts += 1
        return module

    def _route_service_logger(self) -> None:
        """Point the Powertools Logger's handler at this function's log.

        Powertools attaches one stdout handler to the stdlib logger named after the service, once per
        process; the functions share a service name, so here they share that handler, and the
        stdout router sends each invocation's records to its own function's log.
        """
        service = self.environment.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
        router = _router()
        for handler in logging.getLogger(service).handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is not router:
                handler.setStream(router)

    def invoke(self, event: Any, trace_header: str | None = None) -> InvocationResult:
        """Run the handler as Lambda would, and answer as Lambda does: its result or error, or, once it
        has run for its Timeout, `Sandbox.Timedout` right then. Lambda stops the function at that point;
        a thread cannot be stopped, so the handler runs on in the background and its late result is
        discarded (it still holds the invocation lock, as a busy execution environment would).
        `trace_header` is the caller's X-Ray header (Step Functions sends its execution's), else the
        invocation starts a trace of its own, as Lambda's active tracing does."""
        header = _trace_header(trace_header)
        request_bytes = len(json.dumps(event).encode())
        if request_bytes > MAX_SYNC_PAYLOAD_BYTES:
            raise PayloadTooLargeError(request_bytes)
        running = threading.Event()  # the handler has the runtime to itself: its Timeout starts now
        finished = threading.Event()
        outcome: list[InvocationResult | BaseException] = []

        def run() -> None:
            try:
                outcome.append(self._run(event, running, header))
            except BaseException as exc:  # reported to the caller's thread below
                outcome.append(exc)
            finally:
                running.set()
                finished.set()

        # Handlers see the caller's context variables, as when they ran in its thread.
        context = contextvars.copy_context()
        worker = threading.Thread(
            target=context.run, args=(run,), name=f"lambda-{self.spec.function_name}", daemon=True
        )
        worker.start()
        running.wait()
        started_at = time.time()
        if not finished.wait(timeout=self.spec.timeout_seconds):
            return InvocationResult(
                _timed_out(self.spec.timeout_seconds),
                "Unhandled",
                self.spec.timeout_seconds * 1000.0,
                self._sink.take(),
                trace_header=header,
                started_at=started_at,
                ended_at=started_at + self.spec.timeout_seconds,
            )
        (result,) = outcome
        if isinstance(result, BaseException):
            raise result
        return result

    def _run(self, event: Any, running: threading.Event, header: str) -> InvocationResult:
        with (
            local_process(),
            _INVOKE_LOCK,
            # Lambda sets the invocation's X-Ray trace header in the environment of each invocation.
            thread_environment().scoped({**self.environment, "_X_AMZN_TRACE_ID": header}),
            _stdout_to(self._sink),
        ):
            running.set()
            self._route_service_logger()
            started_at = time.time()
            started = time.perf_counter()
            context = LambdaContext(
                function_name=self.spec.function_name,
                memory_limit_in_mb=self.spec.memory_mb,
                invoked_function_arn=self.spec.arn,
                aws_request_id=str(uuid.uuid4()),
                timeout_seconds=self.spec.timeout_seconds,
                log_group_name=f"/aws/lambda/{self.spec.function_name}",
                _deadline=time.monotonic() + self.spec.timeout_seconds,
            )
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    if self._module is None:
                        self._module = self._load()
                    handler = getattr(self._module, self.spec.handler.rpartition(".")[2])
                    result = handler(event, context)
                payload, error = json.dumps(result).encode(), None
            except Exception as exc:  # the runtime reports any exception as the function's error
                payload, error = _error_payload(exc), "Unhandled"
                traceback.print_exception(exc, file=self._sink)
            # Warnings go to the function's log, as the Lambda runtime sends stderr to CloudWatch.
            for warning in caught:
                self._sink.write(f"{warning.category.__name__}: {warning.message}\n")
            duration_ms = (time.perf_counter() - started) * 1000.0
        if error is None and len(payload) > MAX_SYNC_PAYLOAD_BYTES:
            payload, error = _response_too_large(len(payload)), "Unhandled"
        return InvocationResult(
            payload,
            error,
            duration_ms,
            self._sink.take(),
            trace_header=header,
            started_at=started_at,
            ended_at=started_at + duration_ms / 1000.0,
        )


class PayloadTooLargeError(Exception):
    """The request is over Lambda's 6 MB synchronous limit (RequestEntityTooLargeException)."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"{size} byte payload is too large for the Invoke API (max {MAX_SYNC_PAYLOAD_BYTES})"
        )
        self.size = size


def _trace_header(upstream: str | None = None) -> str:
    """An X-Ray trace header as Lambda sets it for a sampled invocation (Root, Parent, Sampled): the
    upstream header's root when there is one, a new root otherwise; Parent is the id of the invocation's
    own function segment, the one the X-Ray SDK's subsegments name as their parent."""
    root = trace_root(upstream) or new_trace_root()
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"


def _error_payload(exc: BaseException) -> bytes:
    """The JSON the Python runtime returns for an unhandled exception; Step Functions reads errorType."""
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "requestId": "",
            "stackTrace": traceback.format_tb(exc.__traceback__),
        }
    ).encode()


def _timed_out(timeout_seconds: int) -> bytes:
    return json.dumps(
        {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"Task timed out after {timeout_seconds:.2f} seconds",
        }
    ).encode()


def _response_too_large(size: int) -> bytes:
    return json.dumps(
        {
            "errorMessage": f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
            f"({MAX_SYNC_PAYLOAD_BYTES} bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
    ).encode()
