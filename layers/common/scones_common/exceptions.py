"""Domain errors. A Lambda error's type is its class name, so these names are the ASL's vocabulary."""


class SconesError(Exception):
    """Base class of every error the workflow names."""


class InvalidInputError(SconesError):
    """The state machine input (or a step's event) does not match its payload model."""


class ImageNotFoundError(SconesError):
    """The bucket or the key does not exist."""


class ImageAccessDeniedError(SconesError):
    """The function may not read the object (IAM, bucket policy or KMS)."""


class ImageTooLargeError(SconesError):
    """The S3 object has more bytes than MAX_IMAGE_BYTES; refused before it is downloaded. (An image over
    MAX_IMAGE_PIXELS is found only when it is decoded, and is an InvalidImageError, like a decompression
    bomb.)"""


class InvalidImageError(SconesError):
    """The bytes are not a decodable image (empty, truncated, corrupt, a decompression bomb...)."""


class UnsupportedImageFormatError(SconesError):
    """The bytes are an image, but in a format the model endpoint does not accept."""


class EndpointError(SconesError):
    """The endpoint failed for good: a container 4xx (ModelError), ValidationError, no such endpoint."""


class EndpointUnavailableError(SconesError):
    """The endpoint failed in a way worth retrying: throttling, not ready, 5xx (container's too), timeout."""


class InvalidModelOutputError(SconesError):
    """The endpoint answered, but not with one probability per class."""


class ThresholdConfidenceNotMetError(SconesError):
    """The most likely class is below the confidence threshold."""


class BatchResultsUnreadableError(SconesError):
    """A batch's ResultWriter manifest or a result file is missing or not what Step Functions writes."""
