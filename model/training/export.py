"""The served artifact: classifier.onnx (calibrated probabilities) and the metadata.json that says how
to feed it. `model.inference` loads exactly these two files, locally and on SageMaker."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from model.inference import METADATA_FILE
from model.training.data import INPUT_SIZE

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
OPSET = 18
# onnxruntime and torch differ by float rounding (about 1e-6 here); a wrong graph differs by far more.
PARITY_TOLERANCE = 1e-4


class ExportError(Exception):
    """The exported graph does not answer as the trained network does."""


def export_onnx(served: nn.Module, path: Path) -> None:
    """float32 NCHW [N,3,32,32] named "input" -> "probabilities", dynamic batch, no exporter metadata."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    # torch 2.13's exporter logs a warning per missing torchvision op and FutureWarnings of its own
    # internals: noise for a model that uses neither.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            served.eval(),
            (torch.zeros(2, 3, *INPUT_SIZE),),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamic_shapes=({0: batch},),
            external_data=False,
            verbose=False,
        )
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    program.optimize()
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path), external_data=False)
    strip_export_metadata(path)
    onnx.checker.check_model(str(path))


def strip_export_metadata(path: Path) -> None:
    """Drop the exporter's per-node metadata (Python stack traces with this machine's paths): the served
    model needs none of it, and the artifact should not depend on where it was built."""
    model = onnx.load(str(path))
    nodes = list(model.graph.node)
    for function in model.functions:
        nodes.extend(function.node)
    for node in nodes:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.metadata_props[:]
    onnx.save(model, str(path))


def check_parity(served: nn.Module, path: Path, inputs: np.ndarray) -> float:
    """Largest difference between torch and onnxruntime on normalised NCHW inputs; raises past tolerance."""
    with torch.no_grad():
        expected = served.eval()(torch.from_numpy(inputs)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (answered,) = session.run(None, {INPUT_NAME: inputs})
    answered = np.asarray(answered)
    difference = float(np.abs(answered - expected).max())
    if not np.isfinite(answered).all() or difference > PARITY_TOLERANCE:
        raise ExportError(f"{path}: onnxruntime differs from torch by {difference:.3g}")
    return difference


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_metadata(model_dir: Path, metadata: dict[str, Any]) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
