"""Serve requests from an unpacked model.tar.gz as the SageMaker PyTorch inference container does.

Run by tests/integration/model/test_model_package.py in a clean interpreter (`python -I -S`), never imported:

    python -I -S container_serve.py MODEL_DIR REQUESTS_JSON SITE_DIR [SITE_DIR...]

sys.path is MODEL_DIR/code (the toolkit puts it first on PYTHONPATH), the standard library, then the
SITE_DIRs: the packages code/requirements.txt installed and the container's own toolkit. The toolkit's
handler service loads the model and answers each request through input_fn, predict_fn and output_fn;
this prints, as JSON, the HTTP status, content type and body it would send for each.
"""

import base64
import importlib.metadata
import json
import sys

# Where each came from tells whether the archive and requirements.txt, and nothing else, were served.
MODULES = ("inference", "model.inference", "scones_common.images", "numpy", "onnxruntime")


class Request:
    """A request's headers as TorchServe hands them to the toolkit."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self.headers


class Context:
    """The parts of TorchServe's ts.context.Context the SageMaker inference toolkit reads and writes."""

    model_name = "model"

    def __init__(self, model_dir: str, headers: dict[str, str]) -> None:
        self.system_properties = {"model_dir": model_dir}
        self.request_processor = [Request(headers)]
        self.status: int | None = None
        self.phrase: str | None = None
        self.content_type: str | None = None

    def set_response_status(self, code: int, phrase: str) -> None:
        self.status, self.phrase = code, phrase

    def set_response_content_type(self, index: int, value: str) -> None:
        self.content_type = value


def main(model_dir: str, requests_path: str, site_dirs: list[str]) -> None:
    sys.path.insert(0, f"{model_dir}/code")
    sys.path.extend(site_dirs)
    # The PyTorch container's HandlerService is this one with torch's default functions, which are
    # not used when inference.py defines all four (sagemaker_pytorch_serving_container/handler_service.py).
    from sagemaker_inference.default_handler_service import DefaultHandlerService
    from sagemaker_inference.errors import BaseInferenceToolkitError

    with open(requests_path, encoding="utf-8") as handle:
        requests = json.load(handle)
    service = DefaultHandlerService()
    service.initialize(Context(model_dir, {}))
    answers = []
    for request in requests:
        headers = {"Content-Type": request["content_type"]}
        if request.get("accept"):
            headers["Accept"] = request["accept"]
        context = Context(model_dir, headers)
        (body,) = service.handle([{"body": bytearray(base64.b64decode(request["body"]))}], context)
        text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else str(body)
        answers.append(
            {
                "name": request["name"],
                "status": context.status or 200,
                "content_type": context.content_type,
                # An error's body is its message and the traceback: the first line is the message.
                "body": text if context.status is None else text.split("\n", 1)[0],
            }
        )
    handler = sys.modules["model.serving.handler"]
    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "sys_path": sys.path,
                "modules": {name: getattr(sys.modules[name], "__file__", None) for name in MODULES},
                "versions": {
                    name: importlib.metadata.version(name) for name in ("numpy", "onnxruntime", "pillow")
                },
                "toolkit_error": issubclass(handler.RequestError, BaseInferenceToolkitError),
                "answers": answers,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
