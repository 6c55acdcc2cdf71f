"""Serving the model on SageMaker: the container's inference handler and the model.tar.gz packager."""
