"""The project's tests. A package: the SageMaker SDK installs a top-level `tests` package of its own."""
