"""Payload models: the state machine input and each step's output (the workflow's contract)."""

from __future__ import annotations

import math
from typing import Any, Literal, TypeVar
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scones_common.exceptions import InvalidInputError

ModelT = TypeVar("ModelT", bound=BaseModel)
# Each function validates two of these models; `defer_build` builds a model's validator when it is first
# used instead of at import, so no function pays for the schemas of the others' payloads.
_PAYLOAD = ConfigDict(extra="ignore", strict=True, defer_build=True)

# S3 allows keys of up to 1,024 bytes; bucket names are 3 to 63 characters.
S3Bucket = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")
S3Key = Field(min_length=1, max_length=1024)


class ImageRef(BaseModel):
    """The state machine input. `image_data` is accepted for the original course's event and ignored."""

    model_config = _PAYLOAD

    s3_bucket: str = S3Bucket
    s3_key: str = S3Key
    image_data: str = ""
    # "url" when the key is as S3 writes it into its events, URL-encoded (the upload rule's input): the
    # model decodes it once, so that s3_key is always the object's real key and the encoding is None.
    s3_key_encoding: Literal["url"] | None = None
    # Set when an S3 upload started the execution (EventBridge rule): they identify one delivery of one
    # object version, so that a duplicate delivery is recognised and classified only once. An unversioned
    # bucket sends no version id: the rule's input then says "" and the model None.
    etag: str | None = None
    version_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _decode_event_key(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and data.get("s3_key_encoding") == "url"
            and isinstance(data.get("s3_key"), str)
        ):
            return {**data, "s3_key": unquote_plus(data["s3_key"]), "s3_key_encoding": None}
        return data

    @field_validator("version_id")
    @classmethod
    def _empty_version_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.s3_bucket}/{self.s3_key}"

    @property
    def object_version(self) -> dict[str, str] | None:
        """What makes two deliveries the same object, or None when the input does not say (manual runs)."""
        if not self.etag:
            return None
        return {
            "s3_bucket": self.s3_bucket,
            "s3_key": self.s3_key,
            "etag": self.etag,
            "version_id": self.version_id or "",
        }


class SerializedImage(BaseModel):
    """Output of serialize_image_data: the image, base64-encoded, small enough for a state (256 KB)."""

    model_config = _PAYLOAD

    s3_bucket: str = S3Bucket
    s3_key: str = S3Key
    image_data: str = Field(min_length=1, description="base64 of the image bytes sent to the endpoint")
    content_type: str = Field(description="image/png or image/jpeg, from the bytes, not the key")
    image_format: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    original_bytes: int = Field(ge=1, description="size of the S3 object")
    normalized: bool = Field(description="true when the image was re-encoded or resized to fit a state")
    # The original workflow carried an empty list forward; kept for compatibility.
    inferences: list[float] = Field(default_factory=list)
    # False here; see DuplicateImage.
    duplicate: bool = False


class DuplicateImage(BaseModel):
    """Output of serialize_image_data for a repeated delivery of an object already serialized: the
    state machine ends at once, so the endpoint is not called and nothing is published twice."""

    model_config = _PAYLOAD

    s3_bucket: str = S3Bucket
    s3_key: str = S3Key
    duplicate: bool = True


class ReleaseDeliveryRequest(BaseModel):
    """Input of release_delivery: the failed execution's own input ($$.Execution.Input)."""

    model_config = _PAYLOAD

    execution_input: ImageRef


class ReleasedDelivery(BaseModel):
    """Output of release_delivery: `released` is False for an execution no S3 delivery started."""

    model_config = _PAYLOAD

    s3_bucket: str = S3Bucket
    s3_key: str = S3Key
    released: bool


class ClassifiedImage(BaseModel):
    """Output of classify_image (and of filter_inferences when the image passes)."""

    model_config = _PAYLOAD

    s3_bucket: str = S3Bucket
    s3_key: str = S3Key
    inferences: list[float] = Field(min_length=2, description="probabilities in `class_names` order")
    class_names: list[str] = Field(min_length=2)
    label: str
    confidence: float = Field(ge=0.0, le=1.0)
    content_type: str
    endpoint_name: str
    inference_ms: float = Field(ge=0.0)

    @field_validator("inferences")
    @classmethod
    def _finite_probabilities(cls, value: list[float]) -> list[float]:
        if any(not math.isfinite(p) or p < 0.0 or p > 1.0 for p in value):
            raise ValueError("every inference must be a probability in [0, 1]")
        return value


class FilteredImage(ClassifiedImage):
    """Output of filter_inferences: a classification confident enough to act on."""

    threshold: float = Field(ge=0.0, le=1.0)


def parse_event(model: type[ModelT], event: Any) -> ModelT:
    """Validate an event against its model; any mismatch becomes one InvalidInputError naming the fields."""
    if not isinstance(event, dict):
        raise InvalidInputError(f"expected a JSON object, got {type(event).__name__}")
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(event)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InvalidInputError(f"invalid {model.__name__}: {problems}") from None


# -- Batch classification (statemachine/batch_classification.asl.json) ------------------------------
OutcomeStatus = Literal["CLASSIFIED", "LOW_CONFIDENCE", "FAILED", "SKIPPED"]


class ImageOutcome(BaseModel):
    """What one child execution of the batch's Distributed Map returns: every object gets one."""

    model_config = _PAYLOAD

    s3_key: str = S3Key
    status: OutcomeStatus
    label: str | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    # The error's name: THRESHOLD_CONFIDENCE_NOT_MET, InvalidImageError, NotAnImageKey, States.Timeout...
    error: str | None = None


class ResultWriterDetails(BaseModel):
    """Where the Distributed Map's ResultWriter put its manifest (the Map state's output names it)."""

    model_config = ConfigDict(extra="ignore", strict=True, defer_build=True, populate_by_name=True)

    bucket: str = Field(alias="Bucket", min_length=3, max_length=63)
    key: str = Field(alias="Key", min_length=1, max_length=1024)


class SummarizeBatchRequest(BaseModel):
    """Input of summarize_batch: the Map state's output, as the batch state machine passes it on."""

    model_config = _PAYLOAD

    map_run_arn: str = Field(min_length=1)
    result_writer_details: ResultWriterDetails


class BatchSummary(BaseModel):
    """Output of summarize_batch and of the batch state machine: counts only, so that it stays far below
    the 256 KB state limit however many objects the prefix holds (the outcomes stay in the result files)."""

    model_config = _PAYLOAD

    map_run_arn: str
    manifest: str = Field(description="s3://bucket/key of the ResultWriter manifest")
    total: int = Field(ge=0, description="objects listed under the prefix, each with one outcome")
    classified: int = Field(ge=0)
    low_confidence: int = Field(ge=0)
    failed: int = Field(ge=0)
    skipped: int = Field(ge=0)
    labels: dict[str, int] = Field(description="confident classifications per label")
    low_confidence_labels: dict[str, int] = Field(description="classifications below the threshold per label")
    failures: dict[str, int] = Field(description="failed objects per error name")
    failure_examples: dict[str, list[str]] = Field(description="a few keys per error name")
