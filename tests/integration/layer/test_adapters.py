"""S3 and SageMaker adapters: SDK errors become the workflow's named errors."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from scones_common.adapters import (
    LazyDeliveryLedger,
    S3ImageStore,
    S3ResultStore,
    SageMakerClassifier,
)
from scones_common.exceptions import (
    BatchResultsUnreadableError,
    EndpointError,
    EndpointUnavailableError,
    ImageNotFoundError,
    ImageTooLargeError,
    InvalidModelOutputError,
)
from scones_common.formats import parse_probabilities


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="images")
        yield client


def test_fetch_reads_the_object(s3: Any) -> None:
    s3.put_object(Bucket="images", Key="a.png", Body=b"abc")
    assert S3ImageStore(s3).fetch("images", "a.png", 10).data == b"abc"


def test_the_key_is_read_exactly_as_given_never_decoded(s3: Any) -> None:
    # Given two objects whose keys differ only as "+" and " " do in URL encoding
    s3.put_object(Bucket="images", Key="photos/my bike.png", Body=b"space")
    s3.put_object(Bucket="images", Key="photos/my+bike.png", Body=b"plus")
    # When each is fetched by its real key / Then each is itself (ImageRef decoded event keys already)
    assert S3ImageStore(s3).fetch("images", "photos/my+bike.png", 10).data == b"plus"
    assert S3ImageStore(s3).fetch("images", "photos/my bike.png", 10).data == b"space"


def test_an_encoded_key_is_not_found_under_its_decoded_name(s3: Any) -> None:
    s3.put_object(Bucket="images", Key="photos/my bike ü.png", Body=b"abc")
    with pytest.raises(ImageNotFoundError):
        S3ImageStore(s3).fetch("images", "photos/my+bike+%C3%BC.png", 10)


def test_missing_object_is_named(s3: Any) -> None:
    with pytest.raises(ImageNotFoundError, match="no such object"):
        S3ImageStore(s3).fetch("images", "nope.png", 10)


def test_missing_bucket_is_named(s3: Any) -> None:
    with pytest.raises(ImageNotFoundError, match="no such"):
        S3ImageStore(s3).fetch("not-a-bucket-here", "a.png", 10)


def test_object_over_the_limit_is_refused_before_download(s3: Any) -> None:
    s3.put_object(Bucket="images", Key="big.png", Body=b"x" * 11)
    with pytest.raises(ImageTooLargeError, match="11 bytes; the limit is 10 bytes"):
        S3ImageStore(s3).fetch("images", "big.png", 10)


def test_result_store_reads_a_result_file(s3: Any) -> None:
    # Given a ResultWriter file in the bucket / When read / Then its bytes come back
    s3.put_object(Bucket="images", Key="batch-results/manifest.json", Body=b'{"ResultFiles": {}}')
    assert S3ResultStore(s3).read("images", "batch-results/manifest.json") == b'{"ResultFiles": {}}'


def test_result_store_names_an_unreadable_file(s3: Any) -> None:
    # Given no such object / When read / Then the named error carries its URI and S3's error code
    with pytest.raises(BatchResultsUnreadableError, match=r"^s3://images/gone\.json: NoSuchKey$"):
        S3ResultStore(s3).read("images", "gone.json")


def test_delivery_ledger_is_created_at_first_use_and_tells_a_repeated_version(s3: Any) -> None:
    # Given the ledger over a DynamoDB table shaped like the template's IdempotencyTable
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="ledger",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    clients: list[Any] = []

    def new_client() -> Any:
        clients.append(dynamodb)
        return dynamodb

    ledger = LazyDeliveryLedger("ledger", 3600, new_client)
    version = {"s3_bucket": "images", "s3_key": "a.png", "etag": "e1", "version_id": ""}
    # Then no client exists before the first question
    assert clients == []
    # When one object version is delivered twice, and another once, within an invocation (Powertools
    # warns when it has no invocation context to bound an in-progress record: an error here)
    invocation = SimpleNamespace(get_remaining_time_in_millis=lambda: 30_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bound = ledger.for_invocation(invocation)
        first, second = bound.is_duplicate(version), bound.is_duplicate(version)
        other = bound.is_duplicate({**version, "etag": "e2"})
    # Then only the repeat is a duplicate, and one client served every question
    assert (first, second, other) == (False, True, False)
    assert len(clients) == 1


def test_a_released_delivery_is_a_first_delivery_again_even_from_another_function(s3: Any) -> None:
    # Given a delivery recorded by the serialize function (its own name in the environment, as on Lambda)
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="ledger",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    version = {"s3_bucket": "images", "s3_key": "a.png", "etag": "e1", "version_id": "v1"}
    invocation = SimpleNamespace(get_remaining_time_in_millis=lambda: 30_000)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_LAMBDA_FUNCTION_NAME", "stack-serialize-image-data")
        serialize = LazyDeliveryLedger("ledger", 3600, lambda: dynamodb).for_invocation(invocation)
        assert serialize.is_duplicate(version) is False
    # When the release function (another name) releases it, twice, and a version never recorded
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_LAMBDA_FUNCTION_NAME", "stack-release-delivery")
        release = LazyDeliveryLedger("ledger", 3600, lambda: dynamodb)
        release.release(version)
        release.release(version)
        release.release({**version, "etag": "never-seen"})
    # Then the table is empty, and the next delivery of the version is a first one again
    assert dynamodb.scan(TableName="ledger")["Count"] == 0
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_LAMBDA_FUNCTION_NAME", "stack-serialize-image-data")
        again = LazyDeliveryLedger("ledger", 3600, lambda: dynamodb).for_invocation(invocation)
        assert again.is_duplicate(version) is False
        assert again.is_duplicate(version) is True


def runtime_with(stub: Any) -> tuple[SageMakerClassifier, Stubber]:
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    stubber = Stubber(client)
    stub(stubber)
    stubber.activate()
    return SageMakerClassifier(client, "ep", ["bicycle", "motorcycle"]), stubber


def test_classifier_returns_probabilities() -> None:
    body = b"[0.9, 0.1]"
    classifier, _ = runtime_with(
        lambda s: s.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body))})
    )
    assert classifier.classify(b"png", "image/png") == [0.9, 0.1]


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ModelError", 424, EndpointError),  # no container status: final (see the ModelError tests below)
        ("ValidationError", 400, EndpointError),
        ("ModelNotReadyException", 429, EndpointUnavailableError),
        ("ThrottlingException", 400, EndpointUnavailableError),
        ("ServiceUnavailable", 503, EndpointUnavailableError),
        ("InternalFailure", 500, EndpointUnavailableError),
    ],
)
def test_endpoint_errors_are_named_transient_or_permanent(code: str, status: int, expected: type) -> None:
    classifier, _ = runtime_with(
        lambda s: s.add_client_error("invoke_endpoint", service_error_code=code, http_status_code=status)
    )
    with pytest.raises(expected, match=code):
        classifier.classify(b"png", "image/png")


_SERVER = (
    'Received server error ({status}) from primary with message "{original}". See https://x in account 1.'
)
_CLIENT = (
    'Received client error ({status}) from primary with message "{original}". See https://x in account 1.'
)
_TIMEOUT = "Your invocation timed out while waiting for a response from container primary."
_LOG_STREAM = (
    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep:log-stream:AllTraffic/i-0"
)


@pytest.mark.parametrize(
    ("status", "message", "original", "expected"),
    [
        (500, _SERVER, "worker died", EndpointUnavailableError),
        (503, _SERVER, "no worker free", EndpointUnavailableError),
        (0, _SERVER, _TIMEOUT, EndpointUnavailableError),  # the 60 s model timeout
        (400, _CLIENT, "not an image", EndpointError),
        (415, _CLIENT, "image/gif is not served", EndpointError),
    ],
    ids=["500", "503", "model-timeout", "400", "415"],
)
def test_model_error_is_retried_for_the_container_5xx_and_timeout_only(
    status: int, message: str, original: str, expected: type
) -> None:
    # Given a ModelError (424) carrying the container's own status, as the runtime's service model shapes it
    classifier, stubber = runtime_with(
        lambda s: s.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            service_message=message.format(status=status, original=original),
            http_status_code=424,
            modeled_fields={
                "OriginalStatusCode": status,
                "OriginalMessage": original,
                "LogStreamArn": _LOG_STREAM,
            },
        )
    )
    # When the image is classified
    # Then a 5xx or the model timeout is worth another try, a 4xx is final; both name the ModelError
    with pytest.raises(expected, match="ModelError") as raised:
        classifier.classify(b"png", "image/png")
    assert original in str(raised.value) and type(raised.value) is expected
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('Received server error (500) from primary with message "boom".', EndpointUnavailableError),
        ('Received client error (400) from primary with message "bad bytes".', EndpointError),
        (f'Received server error (0) from primary with message "{_TIMEOUT}".', EndpointUnavailableError),
        ("something else entirely", EndpointError),
    ],
    ids=["500-in-message", "400-in-message", "timeout-in-message", "unknown"],
)
def test_model_error_without_original_status_reads_the_message(message: str, expected: type) -> None:
    # Given a ModelError whose answer names the container's status only in its message
    classifier, _ = runtime_with(
        lambda s: s.add_client_error(
            "invoke_endpoint", service_error_code="ModelError", service_message=message, http_status_code=424
        )
    )
    # When classified, then 5xx and the timeout are retried, 4xx and anything unrecognised are final
    with pytest.raises(expected) as raised:
        classifier.classify(b"png", "image/png")
    assert type(raised.value) is expected


@pytest.mark.parametrize(
    "raw", [b"oops", b"{}", b"[0.5]", b"[true, false]", b"[NaN, 0.5]", b"[1.5, -0.5]", b"[0.3, 0.3]"]
)
def test_malformed_model_output_is_named(raw: bytes) -> None:
    with pytest.raises(InvalidModelOutputError):
        parse_probabilities(raw, 2)
