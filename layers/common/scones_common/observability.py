"""One Logger, Tracer and Metrics for every function; service and namespace come from the environment."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
# The functions call AWS through botocore and nothing else (no requests, httpx, SQL or Mongo clients), so
# patching botocore alone traces every outbound call, as patch_all would; it spares the cold start the
# import of X-Ray's other integrations (and of sqlite3), which patch_all tries one by one.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()
