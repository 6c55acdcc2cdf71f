"""Environment settings of each function, validated once at cold start."""

from __future__ import annotations

from typing import TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class SerializeSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True)

    max_image_bytes: int = Field(default=5 * 1024 * 1024, gt=0, description="largest S3 object accepted")
    max_image_pixels: int = Field(default=50_000_000, gt=0, description="largest image accepted, in pixels")
    # Base64 grows bytes by 4/3: 150,000 bytes become 200,000 characters, well under the 262,144 bytes
    # a Step Functions state may carry, with room for the other fields.
    max_inline_image_bytes: int = Field(default=150_000, gt=0, le=190_000)


class ClassifySettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True)

    endpoint_name: str = Field(min_length=1, max_length=63)
    class_names: str = Field(
        default="bicycle,motorcycle", description="comma-separated, in the model's order"
    )

    @property
    def class_list(self) -> list[str]:
        return [name.strip() for name in self.class_names.split(",") if name.strip()]


class FilterSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True)

    confidence_threshold: float = Field(default=0.93, ge=0.0, le=1.0)


class SettingsError(RuntimeError):
    """A required environment variable is missing or invalid: the function cannot start."""


def load_settings(model: type[SettingsT]) -> SettingsT:
    try:
        return model()
    except ValidationError as exc:
        names = ", ".join(f"{'.'.join(str(p) for p in e['loc']).upper()} ({e['msg']})" for e in exc.errors())
        raise SettingsError(f"{model.__name__}: invalid environment: {names}") from None
