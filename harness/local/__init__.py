"""The local stand-ins for AWS: moto, the template read as CloudFormation would, botocore hooks that
answer Lambda and SageMaker calls, the Lambda runtime, the endpoint, data capture, EventBridge. Only
this package imports moto."""
