"""Environment settings of each function, validated once at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scones_common.constants import DEFAULT_CONFIDENCE_THRESHOLD


class EnvironmentSettings(BaseModel):
    """Fields read from environment variables of the same name in any case, as pydantic-settings reads them.

    A plain pydantic model rather than pydantic-settings' BaseSettings: importing pydantic-settings costs
    about 40 ms of every cold start (its dotenv, secrets, CLI and cloud sources), and the functions need
    only the environment. The values are strings validated in pydantic's lax mode, so "0.93" is a float
    and "5242880" an int, exactly as BaseSettings validates them. `defer_build`: each function builds the
    schema of its own settings only, not those of the other two. Defaults are validated too, as there.
    """

    model_config = ConfigDict(frozen=True, validate_default=True, defer_build=True)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Self:
        variables = {
            name.lower(): value for name, value in (os.environ if environ is None else environ).items()
        }
        return cls.model_validate({name: variables[name] for name in cls.model_fields if name in variables})


SettingsT = TypeVar("SettingsT", bound=EnvironmentSettings)


class SerializeSettings(EnvironmentSettings):
    max_image_bytes: int = Field(default=5 * 1024 * 1024, gt=0, description="largest S3 object accepted")
    max_image_pixels: int = Field(default=50_000_000, gt=0, description="largest image accepted, in pixels")
    # Base64 grows bytes by 4/3: 150,000 bytes become 200,000 characters, well under the 262,144 bytes
    # a Step Functions state may carry, with room for the other fields.
    max_inline_image_bytes: int = Field(default=150_000, gt=0, le=190_000)
    # DynamoDB table of Powertools idempotency records: one per object version already serialized.
    idempotency_table_name: str = Field(min_length=3, max_length=255)
    # EventBridge retries a delivery for up to 24 hours; a record outlives that.
    idempotency_ttl_seconds: int = Field(default=2 * 24 * 3600, gt=0)


class ReleaseSettings(EnvironmentSettings):
    # The table serialize_image_data records deliveries in (see SerializeSettings).
    idempotency_table_name: str = Field(min_length=3, max_length=255)
    idempotency_ttl_seconds: int = Field(default=2 * 24 * 3600, gt=0)


class ClassifySettings(EnvironmentSettings):
    endpoint_name: str = Field(min_length=1, max_length=63)
    class_names: str = Field(
        default="bicycle,motorcycle", description="comma-separated, in the model's order"
    )

    @property
    def class_list(self) -> list[str]:
        return [name.strip() for name in self.class_names.split(",") if name.strip()]


class FilterSettings(EnvironmentSettings):
    confidence_threshold: float = Field(default=DEFAULT_CONFIDENCE_THRESHOLD, ge=0.0, le=1.0)


class SettingsError(RuntimeError):
    """A required environment variable is missing or invalid: the function cannot start."""


def load_settings(model: type[SettingsT]) -> SettingsT:
    try:
        return model.from_environment()
    except ValidationError as exc:
        names = ", ".join(f"{'.'.join(str(p) for p in e['loc']).upper()} ({e['msg']})" for e in exc.errors())
        raise SettingsError(f"{model.__name__}: invalid environment: {names}") from None
