"""The floor of serialize_image_data's cold start: the work it must do for an upload, none of its code.

An S3 client at import; in the invocation a DynamoDB client and one write (the delivery ledger), the
object read and decoded with Pillow, a log line and a metric through Powertools, traced by X-Ray with
botocore patched, as deployed. No scones_common, no pydantic, no validation: whatever the project's code
costs comes on top of this, so a goal below this row's ratio cannot be met by cutting the project's
code (docs/BENCHMARKS.md).
"""

import io
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from PIL import Image

logger, metrics, tracer = Logger(), Metrics(), Tracer(patch_modules=("botocore",))
s3 = boto3.client("s3")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    dynamodb = boto3.client("dynamodb")
    dynamodb.put_item(TableName="t", Item={"id": {"S": event["etag"]}})
    body = s3.get_object(Bucket=event["s3_bucket"], Key=event["s3_key"])["Body"].read()
    with Image.open(io.BytesIO(body)) as image:
        image.load()
        size = image.size
    metrics.add_metric(name="ImageBytes", unit="Bytes", value=len(body))
    logger.info("image read", extra={"width": size[0], "height": size[1]})
    return {"bytes": len(body)}
