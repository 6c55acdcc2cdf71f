"""Serves the bicycle/motorcycle classifier from its ONNX artifact, as the SageMaker endpoint would.

This is the only module that runs the model: the local endpoint stand-in, `scones evaluate` and the
benchmark all go through it. It needs onnxruntime, numpy and Pillow, never torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from scones_common.exceptions import InvalidImageError, UnsupportedImageFormatError
from scones_common.images import CONTENT_TYPES, decode_image, inspect_image

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "artifacts"
MODEL_FILE = "classifier.onnx"
METADATA_FILE = "metadata.json"

# The content types the built-in image-classification algorithm answers, and the Pillow formats each
# one allows. application/x-image means "sniff it": any format the shared decoder accepts.
SUPPORTED_CONTENT_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "image/png": ("PNG",),
        "image/jpeg": ("JPEG",),
        "application/x-image": tuple(CONTENT_TYPES),
    }
)
SNIFF_CONTENT_TYPE = "application/x-image"

# Bilinear with Pillow's antialiasing support, so a large photo is averaged (area-like) rather than
# point-sampled. train.py preprocesses with the same function, so training and serving agree.
RESAMPLE = Image.Resampling.BILINEAR

# Images per onnxruntime call in predict_batch: large enough to amortise the call, small enough
# that a big evaluation directory does not hold every decoded image in memory at once.
BATCH_CHUNK = 64


class ModelArtifactError(Exception):
    """The model directory is missing a file, or the ONNX graph and metadata.json disagree."""


def allowed_formats(content_type: str) -> tuple[str, ...]:
    """Pillow formats a content type allows; raises UnsupportedImageFormatError for an unknown one."""
    # Ignore parameters and case: "Image/PNG; q=1" is still a PNG request.
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        return SUPPORTED_CONTENT_TYPES[media_type]
    except KeyError:
        supported = ", ".join(SUPPORTED_CONTENT_TYPES)
        raise UnsupportedImageFormatError(
            f"content type {content_type!r} is not supported; send one of {supported}"
        ) from None


def image_to_array(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """An RGB image resized to (width, height) as a uint8 HxWx3 array; shared by training and serving."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != size:
        # reducing_gap lets Pillow shrink a 12 MP photo by whole factors first: same result within
        # a grey level, a fraction of the time.
        image = image.resize(size, RESAMPLE, reducing_gap=3.0)
    return np.asarray(image, dtype=np.uint8)


def decode_to_array(body: bytes, content_type: str, size: tuple[int, int]) -> np.ndarray:
    """Untrusted bytes to uint8 HxWx3; raises only InvalidImageError or UnsupportedImageFormatError."""
    formats = allowed_formats(content_type)
    if not isinstance(body, bytes | bytearray | memoryview):
        raise InvalidImageError(f"the request body must be bytes, not {type(body).__name__}")
    data = bytes(body)
    try:
        image = decode_image(data, formats=formats)
    except UnsupportedImageFormatError as exc:
        # The content type is supported, so bytes of another format are a bad request body, not an
        # unsupported content type: the caller sees one error per cause.
        raise (_explain_mismatch(data, content_type, formats) or InvalidImageError(str(exc))) from exc
    except InvalidImageError as exc:
        mismatch = _explain_mismatch(data, content_type, formats)
        if mismatch is None:
            raise
        raise mismatch from exc
    try:
        return image_to_array(image, size)
    except (OSError, ValueError, MemoryError) as exc:
        raise InvalidImageError(f"cannot resize the image: {type(exc).__name__}: {exc}") from exc


def _explain_mismatch(data: bytes, content_type: str, formats: tuple[str, ...]) -> InvalidImageError | None:
    """A clearer error when the bytes are a good image of another format than the content type says."""
    if len(formats) > 1:
        return None
    try:
        actual = inspect_image(data).format
    except (InvalidImageError, UnsupportedImageFormatError):
        return None
    if actual in formats:
        return None
    return InvalidImageError(f"the content type is {content_type} but the bytes are a {actual} image")


class ImageClassifierModel:
    """An ONNX image classifier plus the metadata that says how to feed it and name its outputs."""

    def __init__(
        self,
        session: ort.InferenceSession,
        metadata: dict[str, Any],
        model_dir: Path,
    ) -> None:
        self.session = session
        self.metadata = metadata
        self.model_dir = model_dir
        self.class_names: list[str] = list(metadata["class_names"])
        height, width = metadata["input_size"]
        self.input_size: tuple[int, int] = (int(width), int(height))  # Pillow order
        norm = metadata["normalization"]
        # Fold (x/255 - mean)/std into one multiply-add on uint8 input.
        std = np.asarray(norm["std"], dtype=np.float32)
        self._scale = (1.0 / (255.0 * std)).reshape(1, 3, 1, 1)
        self._offset = (-np.asarray(norm["mean"], dtype=np.float32) / std).reshape(1, 3, 1, 1)
        self._input_name = session.get_inputs()[0].name
        self._output_name = metadata.get("output_name", session.get_outputs()[0].name)

    @classmethod
    def load(cls, model_dir: Path | None = None, *, intra_op_threads: int = 1) -> ImageClassifierModel:
        """Load (once per directory and thread count) the ONNX session and metadata from `model_dir`."""
        directory = Path(model_dir or DEFAULT_MODEL_DIR).resolve()
        return _load_cached(directory, intra_op_threads)

    def predict(self, body: bytes, content_type: str) -> list[float]:
        """Class probabilities, in `class_names` order, for one encoded image."""
        array = decode_to_array(body, content_type, self.input_size)
        return self.predict_arrays(array[np.newaxis])[0]

    def predict_batch(
        self, images: Sequence[bytes], content_type: str = SNIFF_CONTENT_TYPE
    ) -> list[list[float]]:
        """Probabilities for several encoded images, run through the network in chunks."""
        results: list[list[float]] = []
        for start in range(0, len(images), BATCH_CHUNK):
            chunk = images[start : start + BATCH_CHUNK]
            arrays = np.stack([decode_to_array(body, content_type, self.input_size) for body in chunk])
            results.extend(self.predict_arrays(arrays))
        return results

    def invoke(self, body: bytes, content_type: str) -> bytes:
        """The built-in algorithm's response body: a JSON array of probabilities, e.g. b"[0.97, 0.03]"."""
        return json.dumps(self.predict(body, content_type)).encode("utf-8")

    def predict_arrays(self, images: np.ndarray) -> list[list[float]]:
        """Probabilities for a uint8 NxHxWx3 batch already at the model's input size."""
        return [[float(p) for p in row] for row in self.run(self.to_input(images))]

    def to_input(self, images: np.ndarray) -> np.ndarray:
        """uint8 NHWC to the normalised float32 NCHW tensor the network takes."""
        nchw = images.transpose(0, 3, 1, 2).astype(np.float32)
        return np.ascontiguousarray(nchw * self._scale + self._offset, dtype=np.float32)

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """Normalised float32 NCHW in, N x classes probabilities out."""
        (output,) = self.session.run([self._output_name], {self._input_name: tensor})
        return np.asarray(output)


@lru_cache(maxsize=8)
def _load_cached(model_dir: Path, intra_op_threads: int) -> ImageClassifierModel:
    metadata = _read_metadata(model_dir)
    session = _create_session(model_dir / metadata.get("model_file", MODEL_FILE), intra_op_threads)
    _check_signature(session, metadata)
    return ImageClassifierModel(session, metadata, model_dir)


def _read_metadata(model_dir: Path) -> dict[str, Any]:
    path = model_dir / METADATA_FILE
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelArtifactError(
            f"no {METADATA_FILE} in {model_dir}; train a model with `scones train`"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelArtifactError(f"cannot read {path}: {exc}") from exc
    missing = [key for key in ("class_names", "input_size", "normalization") if key not in metadata]
    if missing:
        raise ModelArtifactError(f"{path} lacks {', '.join(missing)}")
    return dict(metadata)


def _create_session(path: Path, intra_op_threads: int) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelArtifactError(f"no model file {path}; train a model with `scones train`")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped Fail/InvalidGraph errors
        raise ModelArtifactError(f"cannot load {path}: {exc}") from exc


def _check_signature(session: ort.InferenceSession, metadata: dict[str, Any]) -> None:
    """Fail at load, not at the first request, when the graph does not fit the metadata."""
    (model_input,) = session.get_inputs()
    height, width = metadata["input_size"]
    if list(model_input.shape[1:]) != [3, height, width]:
        raise ModelArtifactError(
            f"model input {model_input.shape} does not match input_size {[height, width]}"
        )
    output = session.get_outputs()[0]
    n_classes = output.shape[-1]
    if isinstance(n_classes, int) and n_classes != len(metadata["class_names"]):
        raise ModelArtifactError(
            f"model has {n_classes} outputs but metadata names {metadata['class_names']}"
        )
