"""Container image addresses, from the SDK's `image_uris.retrieve` (offline: the SDK ships the tables)."""

from __future__ import annotations

from model.sagemaker_jobs.errors import InvalidSettingError

BUILTIN_ALGORITHM = "image-classification"
PYTORCH_PY_VERSION = "py312"
# model/train.py runs in the PyTorch 2.9 training container.
PYTORCH_TRAINING_VERSION = "2.9"
# The project's handler is served by the PyTorch 2.6 inference container: the newest PyTorch
# inference image sagemaker-core 2.27.0 lists (2.9 is training-only there); docs/SAGEMAKER.md says why
# it fits (Python 3.12, the SageMaker inference toolkit; torch itself is not used).
PYTORCH_INFERENCE_VERSION = "2.6.0"
# Serverless endpoints have no instance type; their containers run on CPU.
SERVERLESS_IMAGE_INSTANCE_TYPE = "ml.m5.xlarge"


def _retrieve(what: str, region: str, **kwargs: str) -> str:
    from sagemaker.core import image_uris

    try:
        uri: str = image_uris.retrieve(region=region, **kwargs)
    except ValueError as exc:
        # The SDK's message goes on to list every supported region or version: its first sentence.
        reason = str(exc).split(". ", 1)[0]
        raise InvalidSettingError(f"no {what} image for region {region} ({reason})") from exc
    return uri


def builtin_image_uri(region: str) -> str:
    """The built-in image-classification algorithm's image (the same for training and inference)."""
    return _retrieve("image-classification algorithm", region, framework=BUILTIN_ALGORITHM)


def pytorch_training_uri(region: str, instance_type: str) -> str:
    """The PyTorch training container, CPU or GPU flavour by the instance family."""
    return _retrieve(
        f"PyTorch {PYTORCH_TRAINING_VERSION} training",
        region,
        framework="pytorch",
        version=PYTORCH_TRAINING_VERSION,
        py_version=PYTORCH_PY_VERSION,
        instance_type=instance_type,
        image_scope="training",
    )


def pytorch_inference_uri(region: str, instance_type: str | None) -> str:
    """The PyTorch inference container; `instance_type` None (serverless) gives the CPU flavour."""
    return _retrieve(
        f"PyTorch {PYTORCH_INFERENCE_VERSION} inference",
        region,
        framework="pytorch",
        version=PYTORCH_INFERENCE_VERSION,
        py_version=PYTORCH_PY_VERSION,
        instance_type=instance_type or SERVERLESS_IMAGE_INSTANCE_TYPE,
        image_scope="inference",
    )
