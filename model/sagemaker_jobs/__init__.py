"""SageMaker from the `scones` commands, through the SageMaker Python SDK v3 (the `sagemaker` extra).

- `training`: training jobs with ModelTrainer (the built-in algorithm, or model/train.py)
- `endpoint`: model, endpoint configuration and endpoint (the project's model.tar.gz by default)
- `cleanup`: deleting them again
- `images`: container image addresses; `waiting`: polling a job or an endpoint
- `sdk`: importing and setting up the SDK; `errors`, `validation`: one-line errors and input checks

Nothing here imports the SDK at module level: it is imported when a command runs.
"""
