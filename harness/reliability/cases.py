"""The bad (and awkward but valid) inputs the workflow must survive, in one catalogue.

Tests run every case through the real state machine; `scones reliability` prints the same matrix.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from harness.local.endpoint import EndpointFault
from harness.local.workflow import LocalWorkflow
from harness.samples import bundled_images, large_photo


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _bicycle(mode: str = "RGB") -> Image.Image:
    with Image.open(io.BytesIO(bundled_images()[0].data)) as image:
        return image.convert(mode)


def _sixteen_bit_png() -> bytes:
    grey = _bicycle("L")
    return _encode(grey.point(lambda v: v * 257, mode="I").convert("I;16"), "PNG")


def _corrupt_idat() -> bytes:
    data = bytearray(_encode(Image.effect_noise((64, 64), 60).convert("RGB"), "PNG"))
    start = data.index(b"IDAT") + 16
    data[start : start + 64] = bytes(64)
    return bytes(data)


def _huge_header() -> bytes:
    # A valid 1x1 PNG whose IHDR claims 100000 x 100000 pixels (the CRC is left stale on purpose).
    data = bytearray(_encode(Image.new("L", (1, 1)), "PNG"))
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    return bytes(data)


def _decompression_bomb() -> bytes:
    # 20000 x 20000 greyscale: a few hundred KB of PNG, 400 MB once decoded.
    return _encode(Image.new("L", (20_000, 20_000)), "PNG")


def _jpeg_named_png() -> bytes:
    return _encode(_bicycle(), "JPEG", quality=92)


@dataclass(frozen=True)
class InputCase:
    name: str
    key: str
    make: Callable[[], bytes] | None  # None: nothing is uploaded (a missing object)
    outcome: str  # "classified" (SUCCEEDED or THRESHOLD_CONFIDENCE_NOT_MET) or an error name

    @property
    def expects_classification(self) -> bool:
        return self.outcome == "classified"


INPUT_CASES: tuple[InputCase, ...] = (
    InputCase("empty object", "bad/empty.png", lambda: b"", "InvalidImageError"),
    InputCase("text named .png", "bad/text.png", lambda: b"just some words\n" * 20, "InvalidImageError"),
    InputCase(
        "SVG named .png",
        "bad/drawing.png",
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><circle r="9"/></svg>',
        "InvalidImageError",
    ),
    InputCase(
        "HTML named .png",
        "bad/page.png",
        lambda: b"<!doctype html><html><body>hi</body></html>",
        "InvalidImageError",
    ),
    InputCase(
        "truncated PNG", "bad/truncated.png", lambda: bundled_images()[0].data[:200], "InvalidImageError"
    ),
    InputCase("PNG with corrupt IDAT", "bad/corrupt-idat.png", _corrupt_idat, "InvalidImageError"),
    InputCase("header claims 100000x100000", "bad/huge-header.png", _huge_header, "InvalidImageError"),
    InputCase("decompression bomb 20000x20000", "bad/bomb.png", _decompression_bomb, "InvalidImageError"),
    InputCase(
        "ICO (unsupported format)",
        "bad/icon.ico",
        lambda: _encode(_bicycle(), "ICO"),
        "UnsupportedImageFormatError",
    ),
    InputCase(
        "object over 5 MiB",
        "bad/too-big.png",
        lambda: b"\x89PNG\r\n\x1a\n" + bytes(5 * 1024 * 1024 + 1),
        "ImageTooLargeError",
    ),
    InputCase("missing key", "bad/does-not-exist.png", None, "ImageNotFoundError"),
    InputCase("RGBA PNG", "ok/rgba.png", lambda: _encode(_bicycle("RGBA"), "PNG"), "classified"),
    InputCase("greyscale PNG", "ok/grey.png", lambda: _encode(_bicycle("L"), "PNG"), "classified"),
    InputCase("palette PNG", "ok/palette.png", lambda: _encode(_bicycle().convert("P"), "PNG"), "classified"),
    InputCase("16-bit PNG", "ok/sixteen-bit.png", _sixteen_bit_png, "classified"),
    InputCase("CMYK JPEG", "ok/cmyk.jpg", lambda: _encode(_bicycle("CMYK"), "JPEG"), "classified"),
    InputCase("JPEG whose key ends in .png", "ok/really-a-jpeg.png", _jpeg_named_png, "classified"),
    InputCase("GIF", "ok/bike.gif", lambda: _encode(_bicycle().convert("P"), "GIF"), "classified"),
    InputCase("WebP", "ok/photo.webp", lambda: _encode(_bicycle(), "WEBP"), "classified"),
    InputCase(
        "4000x3000 JPEG of several MB",
        "ok/photo-4000x3000.jpg",
        lambda: large_photo(bundled_images()[0]).data,
        "classified",
    ),
    InputCase(
        "key with spaces and unicode",
        "ok/my bike – ünïcode ✓.png",
        lambda: bundled_images()[0].data,
        "classified",
    ),
)


@dataclass(frozen=True)
class InputEventCase:
    """Malformed state machine input (no object is involved)."""

    name: str
    execution_input: dict[str, object]
    outcome: str


EVENT_CASES: tuple[InputEventCase, ...] = (
    InputEventCase("missing s3_key", {"s3_bucket": "scones-local-images"}, "InvalidInputError"),
    InputEventCase("missing s3_bucket", {"s3_key": "a.png"}, "InvalidInputError"),
    InputEventCase(
        "s3_key is a number", {"s3_bucket": "scones-local-images", "s3_key": 7}, "InvalidInputError"
    ),
    InputEventCase(
        "s3_key is a list", {"s3_bucket": "scones-local-images", "s3_key": ["a.png"]}, "InvalidInputError"
    ),
    InputEventCase("empty s3_key", {"s3_bucket": "scones-local-images", "s3_key": ""}, "InvalidInputError"),
    InputEventCase(
        "invalid bucket name", {"s3_bucket": "Bad_Bucket!", "s3_key": "a.png"}, "InvalidInputError"
    ),
    InputEventCase(
        "missing bucket", {"s3_bucket": "no-such-bucket-anywhere", "s3_key": "a.png"}, "ImageNotFoundError"
    ),
    InputEventCase("empty object {}", {}, "InvalidInputError"),
)


@dataclass(frozen=True)
class FaultCase:
    """A failure injected at the local endpoint or in the Lambda service, and what the ASL must do."""

    name: str
    state: str  # the Task whose attempts are counted
    times: int  # how many calls in a row fail
    outcome: str  # "SUCCEEDED" (retried until it worked) or the execution's error
    attempts: int  # calls of the Task's resource, from the execution history
    endpoint_fault: str | EndpointFault | None = None
    lambda_fault: tuple[str, str, int] | None = None  # (function, error code, HTTP status)


_MODEL_OUTPUT = "InvalidModelOutputError"
FAULT_CASES: tuple[FaultCase, ...] = (
    # ModelError carries the container's own status: a 5xx is retried, a 4xx is final.
    FaultCase(
        "SageMaker ModelError, container 500 x2",
        "ClassifyImage",
        2,
        "SUCCEEDED",
        3,
        endpoint_fault="ModelError",
    ),
    FaultCase(
        "SageMaker ModelError, container 400",
        "ClassifyImage",
        1,
        "EndpointError",
        1,
        endpoint_fault="ModelError400",
    ),
    FaultCase(
        "SageMaker ValidationError", "ClassifyImage", 1, "EndpointError", 1, endpoint_fault="ValidationError"
    ),
    FaultCase(
        "SageMaker throttling x2", "ClassifyImage", 2, "SUCCEEDED", 3, endpoint_fault="ThrottlingException"
    ),
    FaultCase(
        "ModelNotReadyException x2",
        "ClassifyImage",
        2,
        "SUCCEEDED",
        3,
        endpoint_fault="ModelNotReadyException",
    ),
    FaultCase(
        "ServiceUnavailable x2", "ClassifyImage", 2, "SUCCEEDED", 3, endpoint_fault="ServiceUnavailable"
    ),
    FaultCase("InternalFailure x2", "ClassifyImage", 2, "SUCCEEDED", 3, endpoint_fault="InternalFailure"),
    FaultCase(
        "ServiceUnavailable, never recovers",
        "ClassifyImage",
        10,
        "EndpointUnavailableError",
        5,
        endpoint_fault="ServiceUnavailable",
    ),
    FaultCase(
        "model slower than the 60 s invocation timeout",
        "ClassifyImage",
        1,
        "SUCCEEDED",
        2,
        endpoint_fault=EndpointFault(delay_seconds=3600.0),
    ),
    *(
        FaultCase(
            f"model output {what}",
            "ClassifyImage",
            1,
            _MODEL_OUTPUT,
            1,
            endpoint_fault=EndpointFault(body=body),
        )
        for what, body in (
            ("not JSON", b"<html>"),
            ("wrong length", b"[1.0]"),
            ("NaN", b"[NaN, 0.5]"),
            ("negative", b"[-0.5, 1.5]"),
            ("sums to 0.4", b"[0.2, 0.2]"),
        )
    ),
    *(
        FaultCase(
            f"Lambda.{code} x2",
            "ClassifyImage",
            2,
            "SUCCEEDED",
            3,
            lambda_fault=("ClassifyImageFunction", code, status),
        )
        for code, status in (
            ("ServiceException", 500),
            ("AWSLambdaException", 500),
            ("SdkClientException", 500),
            ("TooManyRequestsException", 429),
        )
    ),
    FaultCase(
        "Lambda.ServiceException, never recovers",
        "SerializeImageData",
        10,
        "Lambda.ServiceException",
        4,
        lambda_fault=("SerializeImageDataFunction", "ServiceException", 500),
    ),
)


def apply_fault(
    workflow: LocalWorkflow, case: FaultCase, invocation_timeout_seconds: float | None = None
) -> None:
    """Arm the workflow's endpoint or Lambda hook with the case's fault."""
    assert workflow.endpoint is not None and workflow.hooks is not None
    if invocation_timeout_seconds is not None:
        workflow.endpoint.invocation_timeout_seconds = invocation_timeout_seconds
    if case.endpoint_fault is not None:
        workflow.endpoint.inject(case.endpoint_fault, times=case.times)
    if case.lambda_fault is not None:
        function, code, status = case.lambda_fault
        workflow.hooks.inject_lambda_fault(function, code, status, times=case.times)
