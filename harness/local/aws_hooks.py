"""Answer lambda.Invoke and sagemaker-runtime.InvokeEndpoint locally through botocore's public event hooks."""

from __future__ import annotations

import contextvars
import io
import json
from collections import deque
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.hooks import BaseEventHooks
from botocore.response import StreamingBody

from harness.local.endpoint import EndpointErrorResponse, LocalEndpoint
from harness.local.lambda_runtime import LocalFunction, PayloadTooLargeError
from harness.local.moto_engine import current_trace_header
from harness.local.template import ACCOUNT_ID, REGION
from harness.local.tracing import CapturingEmitter

_PARAMS_KEY = "scones_harness_params"
# The S3 key of the image the running function works on (its event's s3_key): the function's own
# thread copies the caller's context, so the endpoint call it makes sees it, and per-image faults can
# find their image among interleaved executions.
_IMAGE_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar("scones_image_key", default=None)


class _EmptyRaw:
    def stream(self, **_: Any) -> Any:
        return iter([b""])


def _response(status: int, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": status, "RequestId": "local", "HTTPHeaders": {}})
    return AWSResponse("http://scones.local", status, {}, _EmptyRaw()), parsed


def _error(status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    return _response(status, {"Error": {"Code": code, "Message": message}})


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


class AwsHooks:
    """Routes the calls that moto cannot answer for real to the local functions and endpoint."""

    def __init__(self, functions: dict[str, LocalFunction], endpoints: dict[str, LocalEndpoint]) -> None:
        self.functions = functions
        self.endpoints = endpoints
        self.lambda_observers: list[Callable[[str, Any, bytes, str | None], None]] = []
        # With X-Ray active: where each invocation's function segment goes (Lambda records it on AWS).
        self.traces: CapturingEmitter | None = None
        # By (function name, S3 key or None for any image).
        self._lambda_faults: dict[tuple[str, str | None], deque[tuple[int, str]]] = {}

    def inject_lambda_fault(
        self, function_name: str, code: str, status: int = 500, times: int = 1, *, key: str | None = None
    ) -> None:
        """The next `times` invokes of a function fail in the Lambda service itself (never reaching the
        handler), e.g. ServiceException (500) or TooManyRequestsException (429): Step Functions names
        them Lambda.<code>. With `key`, only invokes whose event is about that S3 object."""
        self._lambda_faults.setdefault((function_name, key), deque()).extend([(status, code)] * times)

    def register(self, events: BaseEventHooks) -> None:
        for service, operation, handler in (
            ("lambda", "Invoke", self._invoke_lambda),
            ("sagemaker-runtime", "InvokeEndpoint", self._invoke_endpoint),
        ):
            events.register(f"before-parameter-build.{service}.{operation}", _remember_params)
            events.register(f"before-call.{service}.{operation}", handler)

    def _function(self, name_or_arn: str) -> LocalFunction | None:
        # FunctionName may be a name, a full ARN, or either with a :qualifier.
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        return self.functions.get(name)

    def _invoke_lambda(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = context.get(_PARAMS_KEY, {})
        function = self._function(str(params.get("FunctionName", "")))
        if function is None:
            return _error(
                404, "ResourceNotFoundException", f"Function not found: {params.get('FunctionName')}"
            )
        raw = params.get("Payload", b"{}")
        event = json.loads(raw.read() if hasattr(raw, "read") else raw or b"{}")
        key = event.get("s3_key") if isinstance(event, dict) else None
        key = key if isinstance(key, str) else None
        for faults in (
            self._lambda_faults.get((function.spec.function_name, key)) if key is not None else None,
            self._lambda_faults.get((function.spec.function_name, None)),
        ):
            if faults:
                status, code = faults.popleft()
                return _error(status, code, f"injected {code}")
        token = _IMAGE_KEY.set(key)
        try:
            # The execution's trace header, as Step Functions sends it with the Invoke request.
            result = function.invoke(event, trace_header=current_trace_header())
        except PayloadTooLargeError as exc:
            return _error(413, "RequestEntityTooLargeException", str(exc))
        finally:
            _IMAGE_KEY.reset(token)
        if self.traces is not None:
            self.traces.function_segment(
                function.spec.function_name,
                function.spec.arn,
                result.trace_header,
                result.started_at,
                result.ended_at,
                result.json() if result.function_error else None,
            )
        # A result over 256 KB is left to moto, which fails the state with States.DataLimitExceeded as
        # AWS does (tests/integration/harness/local/test_aws_limits.py); a Lambda error may not use the
        # States. prefix.
        payload, function_error = result.payload, result.function_error
        for observer in self.lambda_observers:
            observer(function.spec.function_name, event, payload, function_error)
        parsed: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": _body(payload)}
        if function_error:
            parsed["FunctionError"] = function_error
        return _response(200, parsed)

    def _invoke_endpoint(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = context.get(_PARAMS_KEY, {})
        name = str(params.get("EndpointName", ""))
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return _error(400, "ValidationError", f"Endpoint {name} of account 123456789012 not found.")
        body = params.get("Body", b"")
        data = body.read() if hasattr(body, "read") else body
        data = data.encode() if isinstance(data, str) else bytes(data)
        try:
            answer = endpoint.invoke(
                data, str(params.get("ContentType", "application/x-image")), key=_IMAGE_KEY.get()
            )
        except EndpointErrorResponse as exc:
            parsed_error: dict[str, Any] = {"Error": {"Code": exc.code, "Message": exc.message}}
            if exc.code == "ModelError":
                # The members of the runtime's ModelError shape (botocore's sagemaker-runtime model).
                parsed_error["Message"] = exc.message
                parsed_error["OriginalMessage"] = exc.original_message or exc.message
                if exc.original_status is not None:
                    parsed_error["OriginalStatusCode"] = exc.original_status
                parsed_error["LogStreamArn"] = (
                    f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/{name}"
                    ":log-stream:AllTraffic/local"
                )
            return _response(exc.status, parsed_error)
        return _response(
            200,
            {
                "Body": _body(answer),
                "ContentType": "application/json",
                "InvokedProductionVariant": "AllTraffic",
            },
        )


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[_PARAMS_KEY] = dict(params)
