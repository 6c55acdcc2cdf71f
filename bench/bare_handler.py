"""The baseline for cold starts: a handler that imports only boto3 and creates its client."""

from typing import Any

import boto3

client = boto3.client("s3")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = client.get_object(Bucket=event["s3_bucket"], Key=event["s3_key"])["Body"].read()
    return {"bytes": len(body)}
