"""The local SageMaker endpoint: the container's inference handler answers InvokeEndpoint, with our model.

Each request goes through model.serving.handler's input_fn, predict_fn and output_fn, the functions
the deployed PyTorch container calls from model.tar.gz, so local and deployed serving share one code
path. What the runtime adds around the container is here: the request size limit, the 424 ModelError
that carries the container's own status (a 4xx for a request the handler refuses, a 500 when the
handler crashes, 0 for the 60 s invocation timeout) in OriginalStatusCode, and injected faults.
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
    original_message: str | None = None  # and its OriginalMessage


# The errors SageMaker's runtime returns, with their HTTP status (botocore picks the exception by code).
FAULTS = {
    # The container's 5xx (the workflow retries it) and its 4xx (final), as the runtime reports them.
    "ModelError": EndpointFault(
        "ModelError", 424, "Received server error (500) from primary", original_status=500
    ),
    "ModelError400": EndpointFault(
        "ModelError",
        424,
        'Received client error (400) from primary with message "injected fault"',
        original_status=400,
    ),
    "ModelNotReadyException": EndpointFault("ModelNotReadyException", 429, "Model is not ready"),
    "ThrottlingException": EndpointFault("ThrottlingException", 400, "Rate exceeded"),
    "ServiceUnavailable": EndpointFault("ServiceUnavailable", 503, "Service unavailable"),
    "InternalFailure": EndpointFault("InternalFailure", 500, "Internal failure"),
    "ValidationError": EndpointFault("ValidationError", 400, "Endpoint not found or bad request"),
}


class EndpointErrorResponse(Exception):
    """Raised inside the endpoint; the hook turns it into SageMaker's error response."""

    def __init__(
        self,
        code: str,
        status: int,
        message: str,
        original_status: int | None = None,
        original_message: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.status, self.message = code, status, message
        # A ModelError's OriginalStatusCode and OriginalMessage: what the container itself answered.
        self.original_status = original_status
        self.original_message = original_message


def model_error(status: int, message: str) -> EndpointErrorResponse:
    """The runtime's ModelError (HTTP 424) for a container that answered `status` with `message`."""
    kind = "client" if 400 <= status < 500 else "server"
    return EndpointErrorResponse(
        "ModelError",
        424,
        f'Received {kind} error ({status}) from primary with message "{message}"',
        status,
        message,
    )


@dataclass
class EndpointCall:
    content_type: str
    request_bytes: int
    response: bytes | None
    error: str | None
    seconds: float


# Data capture: (request body, request content type, response body, response content type).
CaptureHook = Callable[[bytes, str, bytes, str], None]

# SageMaker gives a real-time model 60 s to answer, then fails the call with ModelError; the runtime
# reports it as the container's "server error (0)" (as seen in the answers quoted in
# aws/amazon-sagemaker-examples#799 and RamVegiraju/SageMaker-Deployment#3).
INVOCATION_TIMEOUT_SECONDS = 60.0
MODEL_TIMEOUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container primary. Review the latency"
    " metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)


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
        # Faults for one image only (by S3 key): under load, calls for many images interleave.
        self._faults_by_key: dict[str, deque[EndpointFault]] = {}
        self._lock = threading.Lock()

    def inject(self, fault: EndpointFault | str, times: int = 1, *, key: str | None = None) -> None:
        """The next `times` calls fail with `fault` (a name from FAULTS or an EndpointFault); with `key`,
        the next `times` calls made while classifying that S3 object."""
        resolved = FAULTS[fault] if isinstance(fault, str) else fault
        with self._lock:
            queue = self._faults if key is None else self._faults_by_key.setdefault(key, deque())
            queue.extend([resolved] * times)

    def invoke(self, body: bytes, content_type: str, key: str | None = None) -> bytes:
        """Answer one InvokeEndpoint; `key` is the S3 object the calling function is classifying."""
        started = time.perf_counter()
        error: str | None = None
        response: bytes | None = None
        try:
            response = self._answer(body, content_type, key)
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

    def _answer(self, body: bytes, content_type: str, key: str | None) -> bytes:
        with self._lock:
            for_image = self._faults_by_key.get(key) if key is not None else None
            fault = for_image.popleft() if for_image else self._faults.popleft() if self._faults else None
        if fault is not None:
            if fault.delay_seconds > self.invocation_timeout_seconds:
                time.sleep(self.invocation_timeout_seconds)
                raise model_error(0, MODEL_TIMEOUT_MESSAGE)
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault.code:
                raise EndpointErrorResponse(
                    fault.code, fault.status, fault.message, fault.original_status, fault.original_message
                )
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
            raise model_error(exc.status_code, exc.message) from exc
        except Exception as exc:
            # Any other exception in the handler: the inference toolkit answers 500 with its text, and
            # the runtime reports that as ModelError too.
            raise model_error(500, f"{type(exc).__name__}: {exc}") from exc
        return response
