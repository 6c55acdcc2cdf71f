"""The local SageMaker endpoint: our model answers InvokeEndpoint like the built-in algorithm would."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from scones_common.exceptions import InvalidImageError, UnsupportedImageFormatError

MAX_REQUEST_BYTES = 6_291_456  # SageMaker real-time InvokeEndpoint body limit
RESPONSE_CONTENT_TYPE = "application/json"  # what the built-in algorithm answers


class ServesModel(Protocol):
    def invoke(self, body: bytes, content_type: str) -> bytes: ...


@dataclass(frozen=True)
class EndpointFault:
    """One injected failure: an AWS error (code + HTTP status), a delay, or a malformed answer."""

    code: str = ""
    status: int = 0
    message: str = "injected fault"
    delay_seconds: float = 0.0
    body: bytes | None = None


# The errors SageMaker's runtime returns, with their HTTP status (botocore picks the exception by code).
FAULTS = {
    "ModelError": EndpointFault("ModelError", 424, "Received server error (500) from primary"),
    "ModelNotReadyException": EndpointFault("ModelNotReadyException", 429, "Model is not ready"),
    "ThrottlingException": EndpointFault("ThrottlingException", 400, "Rate exceeded"),
    "ServiceUnavailable": EndpointFault("ServiceUnavailable", 503, "Service unavailable"),
    "InternalFailure": EndpointFault("InternalFailure", 500, "Internal failure"),
    "ValidationError": EndpointFault("ValidationError", 400, "Endpoint not found or bad request"),
}


class EndpointErrorResponse(Exception):
    """Raised inside the endpoint; the hook turns it into SageMaker's error response."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.status, self.message = code, status, message


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
        self.invocation_timeout_seconds = invocation_timeout_seconds
        self.calls: list[EndpointCall] = []
        # Called after each successful invocation only, e.g. harness.capture.DataCaptureWriter.
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
                raise EndpointErrorResponse(fault.code, fault.status, fault.message)
            if fault.body is not None:
                return fault.body
        if len(body) > MAX_REQUEST_BYTES:
            raise EndpointErrorResponse(
                "ValidationError", 400, f"Request body of {len(body)} bytes exceeds {MAX_REQUEST_BYTES} bytes"
            )
        try:
            return self.model.invoke(body, content_type)
        except (InvalidImageError, UnsupportedImageFormatError) as exc:
            # The built-in algorithm answers undecodable input with a client error from the container,
            # which the runtime reports as ModelError (HTTP 424).
            raise EndpointErrorResponse(
                "ModelError", 424, f'Received client error (400) from primary with message "{exc}"'
            ) from exc
