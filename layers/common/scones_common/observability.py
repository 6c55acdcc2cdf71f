"""One Logger, Tracer and Metrics for every function; service and namespace come from the environment."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
