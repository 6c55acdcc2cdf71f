"""The model server: every image mode in, two probabilities out; bad input only as named errors."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from model.inference import (
    DEFAULT_MODEL_DIR,
    SUPPORTED_CONTENT_TYPES,
    ImageClassifierModel,
    ModelArtifactError,
)
from scones_common.exceptions import InvalidImageError, UnsupportedImageFormatError
from tests.helpers import SHARED_DATA

DATA_DIR = SHARED_DATA / "cifar100-bicycle-motorcycle" / "train"
REAL_PHOTOS_DIR = DATA_DIR.parents[1] / "real-photos-dev"
needs_shared_data = pytest.mark.skipif(
    not DATA_DIR.is_dir(), reason=f"shared CIFAR-100 sample data not checked out at {DATA_DIR}"
)


@pytest.fixture(scope="module")
def model() -> ImageClassifierModel:
    return ImageClassifierModel.load()


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def gradient(mode: str, size: tuple[int, int] = (48, 40)) -> Image.Image:
    rgb = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    rgb[..., 0] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]
    rgb[..., 1] = np.linspace(0, 255, size[1], dtype=np.uint8)[:, None]
    return Image.fromarray(rgb, "RGB").convert(mode)


def assert_probabilities(probabilities: list[float]) -> None:
    assert isinstance(probabilities, list)
    assert len(probabilities) == 2
    assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in probabilities)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)


def png_with_header_size(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR claims width x height: a decompression bomb's header."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    ihdr = data[12:29]  # chunk type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


# ---------------------------------------------------------------- loading


def test_load_reads_the_default_artifacts(model: ImageClassifierModel) -> None:
    # Given the committed artifacts / When loaded / Then the classes are in the workflow's order
    assert model.class_names == ["bicycle", "motorcycle"]
    assert model.model_dir == DEFAULT_MODEL_DIR.resolve()
    assert model.metadata["input_size"] == [32, 32]


def test_load_is_cached_per_directory_and_thread_count() -> None:
    assert ImageClassifierModel.load() is ImageClassifierModel.load(DEFAULT_MODEL_DIR)
    assert ImageClassifierModel.load(intra_op_threads=2) is not ImageClassifierModel.load()


def test_load_from_a_missing_directory_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelArtifactError, match=r"metadata\.json"):
        ImageClassifierModel.load(tmp_path / "nowhere")


def test_load_of_a_corrupt_onnx_file_is_a_model_artifact_error(tmp_path: Path) -> None:
    # Given good metadata next to an ONNX file that is not a model
    (tmp_path / "metadata.json").write_bytes((DEFAULT_MODEL_DIR / "metadata.json").read_bytes())
    (tmp_path / "classifier.onnx").write_bytes(b"not a protobuf")
    # When / Then
    with pytest.raises(ModelArtifactError, match="cannot load"):
        ImageClassifierModel.load(tmp_path)


# ---------------------------------------------------------------- predictions on real and synthetic images


@needs_shared_data
@pytest.mark.parametrize("label", ["bicycle", "motorcycle"])
def test_predict_on_real_cifar_pngs(model: ImageClassifierModel, label: str) -> None:
    for path in sorted((DATA_DIR / label).glob("*.png"))[:3]:
        assert_probabilities(model.predict(path.read_bytes(), "image/png"))


@pytest.mark.skipif(
    not REAL_PHOTOS_DIR.is_dir(), reason="the real-photo development set is not next to the repo"
)
def test_real_photos_never_trained_on_are_mostly_classified_correctly(model: ImageClassifierModel) -> None:
    # Given the real photographs of the development set (JPEG of many sizes; never trained or tuned on)
    photos = sorted(path for path in REAL_PHOTOS_DIR.glob("*/*") if path.is_file())
    # When each is classified from its own bytes, whatever the format
    correct = sum(
        model.class_names[int(np.argmax(model.predict(path.read_bytes(), "application/x-image")))]
        == path.parent.name
        for path in photos
    )
    # Then well above chance (model/README.md has the measured figure)
    assert len(photos) > 100
    assert correct / len(photos) >= 0.9


@pytest.mark.parametrize(
    ("mode", "fmt", "content_type"),
    [
        ("RGB", "PNG", "image/png"),
        ("RGBA", "PNG", "image/png"),
        ("LA", "PNG", "image/png"),
        ("L", "PNG", "image/png"),
        ("1", "PNG", "image/png"),
        ("P", "PNG", "image/png"),
        ("I;16", "PNG", "image/png"),
        ("RGB", "JPEG", "image/jpeg"),
        ("L", "JPEG", "image/jpeg"),
        ("CMYK", "JPEG", "image/jpeg"),
        ("RGB", "GIF", "application/x-image"),
        ("RGB", "WEBP", "application/x-image"),
        ("RGB", "BMP", "application/x-image"),
        ("RGB", "TIFF", "application/x-image"),
        ("RGBA", "PNG", "application/x-image"),
        ("RGB", "JPEG", "application/x-image"),
    ],
)
def test_predict_accepts_every_mode_and_format(
    model: ImageClassifierModel, mode: str, fmt: str, content_type: str
) -> None:
    body = encode(gradient(mode), fmt)
    assert_probabilities(model.predict(body, content_type))


def test_predict_on_a_16_bit_png_uses_its_full_range(model: ImageClassifierModel) -> None:
    # Given a 16-bit greyscale PNG whose values go far above 255
    values = np.linspace(0, 65535, 32 * 32, dtype=np.uint16).reshape(32, 32)
    body = encode(Image.fromarray(values), "PNG")
    assert_probabilities(model.predict(body, "image/png"))


def test_predict_on_a_transparent_palette_png(model: ImageClassifierModel) -> None:
    image = gradient("P")
    body = encode(image, "PNG", transparency=0)
    assert_probabilities(model.predict(body, "image/png"))


def test_predict_on_a_large_photo_sized_jpeg(model: ImageClassifierModel) -> None:
    # Given a 4000x3000 JPEG (12 MP, not square)
    body = encode(gradient("RGB", (4000, 3000)), "JPEG", quality=80)
    assert_probabilities(model.predict(body, "image/jpeg"))


def test_predict_on_a_tiny_image(model: ImageClassifierModel) -> None:
    assert_probabilities(model.predict(encode(Image.new("RGB", (1, 1), "red"), "PNG"), "image/png"))


def test_content_type_parameters_and_case_are_ignored(model: ImageClassifierModel) -> None:
    body = encode(gradient("RGB"), "PNG")
    assert model.predict(body, "Image/PNG; charset=binary") == model.predict(body, "image/png")


def test_invoke_answers_like_the_built_in_algorithm(model: ImageClassifierModel) -> None:
    # Given a PNG / When invoked / Then the body is a JSON array of the same probabilities
    body = encode(gradient("RGB"), "PNG")
    response = model.invoke(body, "image/png")
    assert isinstance(response, bytes)
    assert response.startswith(b"[") and response.endswith(b"]")
    assert json.loads(response) == model.predict(body, "image/png")


def test_predict_batch_matches_single_predictions(model: ImageClassifierModel) -> None:
    bodies = [encode(gradient(mode), "PNG") for mode in ("RGB", "L", "RGBA")]
    batch = model.predict_batch(bodies)
    for body, probabilities in zip(bodies, batch, strict=True):
        assert probabilities == pytest.approx(model.predict(body, "image/png"), abs=1e-6)


def test_supported_content_types_are_those_of_the_built_in_algorithm() -> None:
    assert set(SUPPORTED_CONTENT_TYPES) == {"image/png", "image/jpeg", "application/x-image"}


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("content_type", ["image/gif", "text/plain", "application/json", "", "image/*"])
def test_unknown_content_type_is_unsupported(model: ImageClassifierModel, content_type: str) -> None:
    with pytest.raises(UnsupportedImageFormatError):
        model.predict(encode(gradient("RGB"), "PNG"), content_type)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not an image at all",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        b"\xff\xd8\xff" + b"garbage" * 10,
        b"GIF89a",
    ],
    ids=["empty", "text", "png-signature-only", "jpeg-signature-only", "gif-signature-only"],
)
def test_undecodable_bytes_are_invalid_images(model: ImageClassifierModel, body: bytes) -> None:
    with pytest.raises(InvalidImageError):
        model.predict(body, "application/x-image")


def test_truncated_png_is_an_invalid_image(model: ImageClassifierModel) -> None:
    body = encode(gradient("RGB", (64, 64)), "PNG")
    with pytest.raises(InvalidImageError):
        model.predict(body[: len(body) // 2], "image/png")


def test_a_jpeg_sent_as_png_is_an_invalid_image_that_says_so(model: ImageClassifierModel) -> None:
    with pytest.raises(InvalidImageError, match="content type is image/png but the bytes are a JPEG"):
        model.predict(encode(gradient("RGB"), "JPEG"), "image/png")


def test_a_png_sent_as_jpeg_is_an_invalid_image(model: ImageClassifierModel) -> None:
    with pytest.raises(InvalidImageError):
        model.predict(encode(gradient("RGB"), "PNG"), "image/jpeg")


def test_an_image_format_the_decoder_does_not_accept_is_an_invalid_image(model: ImageClassifierModel) -> None:
    # Given an ICO file: Pillow reads it, the shared decoder does not accept it
    body = encode(gradient("RGB", (32, 32)), "ICO")
    # When sent with a content type we do support / Then it is the body that is wrong
    with pytest.raises(InvalidImageError, match="ICO"):
        model.predict(body, "application/x-image")


def test_decompression_bomb_header_is_an_invalid_image(model: ImageClassifierModel) -> None:
    # Given a PNG that claims 30000x30000 pixels (900 MP)
    with pytest.raises(InvalidImageError):
        model.predict(png_with_header_size(30_000, 30_000), "image/png")


def test_a_body_that_is_not_bytes_is_an_invalid_image(model: ImageClassifierModel) -> None:
    with pytest.raises(InvalidImageError):
        model.predict("a string", "image/png")  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=256))
def test_arbitrary_bytes_raise_only_named_errors(model: ImageClassifierModel, body: bytes) -> None:
    # An image that happens to decode must still give probabilities; anything else is a named error.
    with contextlib.suppress(InvalidImageError, UnsupportedImageFormatError):
        assert_probabilities(model.predict(body, "application/x-image"))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_corrupted_pngs_raise_only_invalid_image(model: ImageClassifierModel, data: st.DataObject) -> None:
    # Given a valid PNG with a few bytes overwritten (the fuzz corpus that found SyntaxError)
    body = bytearray(encode(gradient("RGBA", (16, 16)), "PNG"))
    for _ in range(data.draw(st.integers(1, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(InvalidImageError):
        assert_probabilities(model.predict(bytes(body), "image/png"))
