"""The SageMaker inference handler: one constraint per test, on the committed model."""

from __future__ import annotations

import json

import pytest

from model.inference import DEFAULT_MODEL_DIR, ImageClassifierModel
from model.serving.handler import (
    ImageRequest,
    RequestError,
    input_fn,
    model_fn,
    output_fn,
    predict_fn,
)
from tests.helpers import StubModel, png_bytes


@pytest.fixture(scope="module")
def model() -> ImageClassifierModel:
    return model_fn(str(DEFAULT_MODEL_DIR))


def test_model_fn_loads_the_model_directory_as_the_local_endpoint_does(model: ImageClassifierModel) -> None:
    # The container passes the unpacked model.tar.gz as a str; the harness loads the same directory
    assert model is ImageClassifierModel.load()


def test_the_three_functions_answer_as_the_model_invokes(model: ImageClassifierModel) -> None:
    body = png_bytes((40, 30))
    response, content_type = output_fn(predict_fn(input_fn(body, "image/png"), model), "application/json")
    assert content_type == "application/json"
    assert response == model.invoke(body, "image/png")


@pytest.mark.parametrize("content_type", ["image/png", "Image/PNG; charset=binary", "application/x-image"])
def test_input_fn_accepts_the_content_types_the_model_serves(content_type: str) -> None:
    assert input_fn(bytearray(b"\x89PNG"), content_type) == ImageRequest(b"\x89PNG", content_type)


@pytest.mark.parametrize("content_type", ["text/csv", "application/json", "image/gif", "", None])
def test_input_fn_refuses_another_content_type_with_415(content_type: str) -> None:
    with pytest.raises(RequestError) as raised:
        input_fn(b"\x89PNG", content_type)
    assert raised.value.status_code == 415
    assert "is not supported" in raised.value.message


def test_input_fn_refuses_a_decoded_text_body_with_400() -> None:
    # The toolkit decodes JSON and CSV bodies to str; an image content type never is, but be sure
    with pytest.raises(RequestError) as raised:
        input_fn("not bytes", "image/png")  # type: ignore[arg-type]
    assert raised.value.status_code == 400


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"", "image/png"), (b"<html>no</html>", "image/png"), (png_bytes()[:60], "image/png")],
    ids=["empty", "html", "truncated"],
)
def test_predict_fn_answers_bytes_that_are_not_an_image_with_400(
    model: ImageClassifierModel, body: bytes, content_type: str
) -> None:
    with pytest.raises(RequestError) as raised:
        predict_fn(ImageRequest(body, content_type), model)
    assert raised.value.status_code == 400
    # The toolkit sends message as the body and phrase as the status line's reason
    assert raised.value.message == raised.value.phrase == str(raised.value)


def test_predict_fn_passes_the_request_to_the_model_unchanged() -> None:
    stub = StubModel([0.6, 0.4])
    assert predict_fn(ImageRequest(b"abc", "image/jpeg"), stub) == [0.6, 0.4]
    assert stub.requests == [("image/jpeg", 3)]


@pytest.mark.parametrize(
    "accept", ["application/json", "*/*", "application/*", "text/csv, application/json;q=0.9", "", None]
)
def test_output_fn_answers_json_to_a_caller_that_takes_it(accept: str) -> None:
    body, content_type = output_fn([0.25, 0.75], accept)
    assert (json.loads(body), content_type) == ([0.25, 0.75], "application/json")


@pytest.mark.parametrize("accept", ["text/csv", "application/x-npy", "image/png"])
def test_output_fn_refuses_a_caller_that_takes_no_json_with_406(accept: str) -> None:
    with pytest.raises(RequestError) as raised:
        output_fn([0.25, 0.75], accept)
    assert raised.value.status_code == 406
