"""Duplicate deliveries of one S3 object version are serialized once (Powertools idempotency, DynamoDB)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

# The records' key is KEY_PREFIX#hash(object version). Powertools' default prefix is the name of the function
# that records, so another function (release_delivery) could not find the record; both use this one.
KEY_PREFIX = "scones.delivery"


class _Released(Exception):
    """Why a record is deleted (Powertools' delete_record names an exception in its log)."""


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
        self._persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client)
        self._record = idempotent_function(
            data_keyword_argument="object_version",
            persistence_store=self._persistence,
            config=self.config,
            key_prefix=KEY_PREFIX,
        )(_first_delivery)

    def is_duplicate(self, object_version: dict[str, str]) -> bool:
        return bool(self._record(object_version=object_version)["duplicate"])

    def release(self, object_version: dict[str, str]) -> None:
        # DeleteItem of an absent key succeeds: releasing twice, or a version never recorded, is fine.
        self._persistence.configure(self.config, key_prefix=KEY_PREFIX)
        self._persistence.delete_record(object_version, _Released("the execution failed after recording it"))
