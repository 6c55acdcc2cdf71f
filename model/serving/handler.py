"""The SageMaker inference handler (model_fn, input_fn, predict_fn, output_fn) over model.inference.

The PyTorch inference container's toolkit imports `code/inference.py` from model.tar.gz, which
re-exports these four functions; the local endpoint (harness/local/endpoint.py) calls the same ones, so
local and deployed serving share one code path: decoding and the network are
`ImageClassifierModel.predict`, as for `scones evaluate` and the benchmark.

Answers as the built-in image-classification algorithm does: image/png, image/jpeg or
application/x-image in, a JSON list of probabilities in `class_names` order out. A request the model
cannot answer is a client error with its own HTTP status: 415 for another content type, 400 for bytes
that are not an image of the declared type, 406 when the caller accepts no JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from model.inference import ImageClassifierModel, allowed_formats
from scones_common.exceptions import InvalidImageError, UnsupportedImageFormatError

RESPONSE_CONTENT_TYPE = "application/json"
# Accept values that a JSON answer satisfies (the toolkit turns a missing Accept and */* into
# its default, application/json, before output_fn sees it).
_JSON_MEDIA_RANGES = frozenset({RESPONSE_CONTENT_TYPE, "application/*", "*/*"})


class _StandInToolkitError(Exception):
    """sagemaker_inference.errors.BaseInferenceToolkitError's constructor and attributes."""

    def __init__(self, status_code: int, message: str, phrase: str) -> None:
        self.status_code = status_code
        self.message = message
        self.phrase = phrase
        super().__init__(status_code, message, phrase)


# The toolkit answers with an exception's own status only if it is an instance of its
# BaseInferenceToolkitError (sagemaker_inference/transformer.py); any other exception becomes a 500.
# The container ships that class (sagemaker-pytorch-inference vendors sagemaker_inference); this
# project's environment does not install the toolkit, so a stand-in with the same attributes
# (status_code, message, phrase) takes its place outside the container.
try:
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:
    _ToolkitError = _StandInToolkitError


class RequestError(_ToolkitError):
    """A request the model cannot answer; the container replies with `status_code` (4xx)."""

    status_code: int
    message: str

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, message, message)

    def __str__(self) -> str:
        return self.message


class Predictor(Protocol):
    """What predict_fn needs of the model: ImageClassifierModel, or a test's stand-in."""

    def predict(self, body: bytes, content_type: str) -> Sequence[float]: ...


@dataclass(frozen=True)
class ImageRequest:
    """A request whose content type the model serves; its bytes are decoded by the model."""

    body: bytes
    content_type: str


def model_fn(model_dir: str) -> ImageClassifierModel:
    """Load classifier.onnx and metadata.json (and what metadata names) from the unpacked model.tar.gz."""
    # One onnxruntime thread: each TorchServe worker is a process of its own with its own model.
    return ImageClassifierModel.load(Path(model_dir))


def input_fn(request_body: bytes | bytearray, request_content_type: str) -> ImageRequest:
    """Accept the request if its content type is one the model serves (415 otherwise).

    TorchServe hands the body over as a bytearray; the toolkit decodes JSON and CSV bodies to str.
    """
    try:
        allowed_formats(request_content_type or "")
    except UnsupportedImageFormatError as exc:
        raise RequestError(415, str(exc)) from exc
    if not isinstance(request_body, bytes | bytearray | memoryview):
        raise RequestError(400, f"the request body must be bytes, not {type(request_body).__name__}")
    return ImageRequest(bytes(request_body), request_content_type)


def predict_fn(data: ImageRequest, model: Predictor) -> list[float]:
    """Class probabilities for the image (400 if the bytes are not an image of the declared type)."""
    try:
        return list(model.predict(data.body, data.content_type))
    except InvalidImageError as exc:
        raise RequestError(400, str(exc)) from exc
    except UnsupportedImageFormatError as exc:
        raise RequestError(415, str(exc)) from exc


def output_fn(prediction: list[float], accept: str) -> tuple[bytes, str]:
    """The response body and its content type: a JSON array, e.g. b"[0.97, 0.03]"."""
    if not _accepts_json(accept):
        raise RequestError(406, f"the answer is {RESPONSE_CONTENT_TYPE}; Accept was {accept!r}")
    return json.dumps(prediction).encode("utf-8"), RESPONSE_CONTENT_TYPE


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    ranges = (part.split(";", 1)[0].strip().lower() for part in accept.split(","))
    return any(media_range in _JSON_MEDIA_RANGES for media_range in ranges)
