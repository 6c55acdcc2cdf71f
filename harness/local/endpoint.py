"""The local SageMaker endpoint: the container's inference handler answers InvokeEndpoint, with our model.

Each request goes through model.serving.handler's input_fn, predict_fn and output_fn, the functions
the deployed PyTorch container calls from model.tar.gz, so local and deployed serving share one code
path. What the runtime adds around the container is here: the request size limit, the 424 ModelError
that carries a container's 4xx, the invocation timeout, and injected faults.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

MAX_REQUEST_BYTES = 6_291_456  # SageMaker real-time InvokeEndpoint body limit
RESPONSE_CONTENT_TYPE = "application/json"  # what the built-in algorithm answers
# The classify step sends Accept: application/json; the toolkit uses the same when Accept is absent.
DEFAULT_ACCEPT = "application/json"
HANDLER_MODULE = "model.serving.handler"


class ServesModel(Protocol):
    """What the handler's predict_fn calls: ImageClassifierModel, or a test's stub."""

    def predict(self, body: bytes, content_type: str) -> Sequence[float]: ...


@dataclass(frozen=True)
class EndpointFault:
    """One injected failure: an AWS error (code + HTTP status), a delay, or a malformed answer."""

    code: str = ""
    status: int = 0
    message: str = "injected fault"
    delay_seconds: float = 0.0
    body: bytes | None = None
    original_status: int | None = None  # a ModelError's OriginalStatusCode: the container's own status


# The errors SageMaker's runtime returns, with their HTTP status (botocore picks the exception by code).
FAULTS = {
    "ModelError": EndpointFault(
        "ModelError", 424, "Received server error (500) from primary", original_status=500
    ),
    "ModelNotReadyException": EndpointFault("ModelNotReadyException", 429, "Model is not ready"),
    "ThrottlingException": EndpointFault("ThrottlingException", 400, "Rate exceeded"),
    "ServiceUnavailable": EndpointFault("ServiceUnavailable", 503, "Service unavailable"),
    "InternalFailure": EndpointFault("InternalFailure", 500, "Internal failure"),
    "ValidationError": EndpointFault("ValidationError", 400, "Endpoint not found or bad request"),
}


class EndpointErrorResponse(Exception):
    """Raised inside the endpoint; the hook turns it into SageMaker's error response."""

    def __init__(self, code: str, status: int, message: str, original_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.status, self.message = code, status, message
        self.original_status = original_status


@dataclass
class EndpointCall:
    content_type: str
    request_bytes: int
    response: bytes | None
    error: str | None
    seconds: float


# Data capture: (request body, request content type, response body, response content type).
CaptureHook = Callable[[bytes, str, bytes, str], None]

# SageMaker gives a real-time model 60 s to answer, then fails the call with ModelError.
INVOCATION_TIMEOUT_SECONDS = 60.0


class LocalEndpoint:
    def __init__(
        self, name: str, model: ServesModel, invocation_timeout_seconds: float = INVOCATION_TIMEOUT_SECONDS
    ) -> None:
        self.name = name
        self.model = model
        # The handler loads onnxruntime (about 0.2 s), which `scones --help` does not need: imported
        # with the endpoint, not with this module, and not at the first call (inside a Lambda handler).
        importlib.import_module(HANDLER_MODULE)
        self.invocation_timeout_seconds = invocation_timeout_seconds
        self.calls: list[EndpointCall] = []
        # Called after each successful invocation only, e.g. harness.local.capture.DataCaptureWriter.
        self.capture: CaptureHook | None = None
        self._faults: deque[EndpointFault] = deque()
        self._lock = threading.Lock()

    def inject(self, fault: EndpointFault | str, times: int = 1) -> None:
        """The next `times` calls fail with `fault` (a name from FAULTS or an EndpointFault)."""
        resolved = FAULTS[fault] if isinstance(fault, str) else fault
        with self._lock:
            self._faults.extend([resolved] * times)

    def invoke(self, body: bytes, content_type: str) -> bytes:
        started = time.perf_counter()
        error: str | None = None
        response: bytes | None = None
        try:
            response = self._answer(body, content_type)
            if self.capture is not None:
                self.capture(body, content_type, response, RESPONSE_CONTENT_TYPE)
            return response
        except EndpointErrorResponse as exc:
            error = exc.code
            raise
        finally:
            self.calls.append(
                EndpointCall(content_type, len(body), response, error, time.perf_counter() - started)
            )

    def _answer(self, body: bytes, content_type: str) -> bytes:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            if fault.delay_seconds > self.invocation_timeout_seconds:
                time.sleep(self.invocation_timeout_seconds)
                raise EndpointErrorResponse(
                    "ModelError",
                    424,
                    "Your invocation timed out while waiting for a response from container primary.",
                )
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault.code:
                raise EndpointErrorResponse(fault.code, fault.status, fault.message, fault.original_status)
            if fault.body is not None:
                return fault.body
        if len(body) > MAX_REQUEST_BYTES:
            raise EndpointErrorResponse(
                "ValidationError", 400, f"Request body of {len(body)} bytes exceeds {MAX_REQUEST_BYTES} bytes"
            )
        from model.serving.handler import RequestError, input_fn, output_fn, predict_fn

        try:
            # As the toolkit's default transform_fn: input_fn -> predict_fn -> output_fn.
            request = input_fn(body, content_type)
            prediction = predict_fn(request, self.model)
            response, _ = output_fn(prediction, DEFAULT_ACCEPT)
        except RequestError as exc:
            # The container answers a request it cannot serve with a 4xx, which the runtime reports
            # as ModelError (HTTP 424) naming the container's status.
            raise EndpointErrorResponse(
                "ModelError",
                424,
                f'Received client error ({exc.status_code}) from primary with message "{exc.message}"',
                exc.status_code,
            ) from exc
        return response
