"""Duplicate deliveries of one S3 object version are serialized once (Powertools idempotency, DynamoDB)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord


def _first_delivery(object_version: dict[str, str]) -> dict[str, bool]:
    return {"duplicate": False}


def _replayed(response: Any, idempotent_data: DataRecord) -> Any:
    # Powertools calls this only when it answers from a stored record, i.e. for a repeated delivery.
    return {**response, "duplicate": True}


class DynamoDBDeliveryLedger:
    """Remembers each object version that was serialized; a second delivery of it is a duplicate.

    Implements scones_common.ports.DeliveryLedger; the functions reach it through
    scones_common.adapters.LazyDeliveryLedger, which imports this module at the first use only.
    """

    def __init__(self, table_name: str, dynamodb_client: Any, ttl_seconds: int) -> None:
        self.config = IdempotencyConfig(expires_after_seconds=ttl_seconds, response_hook=_replayed)
        persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client)
        self._record = idempotent_function(
            data_keyword_argument="object_version", persistence_store=persistence, config=self.config
        )(_first_delivery)

    def is_duplicate(self, object_version: dict[str, str]) -> bool:
        return bool(self._record(object_version=object_version)["duplicate"])
