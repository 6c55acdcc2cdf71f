"""Test helpers: a stub endpoint model and image builders."""

from __future__ import annotations

import io
import json

from PIL import Image


class StubModel:
    """Answers every request with fixed probabilities; records what it was sent."""

    def __init__(self, probabilities: list[float] | None = None) -> None:
        self.probabilities = probabilities or [0.97, 0.03]
        self.requests: list[tuple[str, int]] = []

    def invoke(self, body: bytes, content_type: str) -> bytes:
        self.requests.append((content_type, len(body)))
        return json.dumps(self.probabilities).encode()


def png_bytes(size: tuple[int, int] = (32, 32), mode: str = "RGB", color: object = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")  # type: ignore[arg-type]
    return buffer.getvalue()
