"""`scones monitor`: what the endpoint saw and answered, read back from SageMaker data capture."""
