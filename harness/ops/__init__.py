"""What works on any target, local or deployed: the execution interface and its results, the
deployed stack, batches, load tests and stack clean-up. Never imports moto, click or rich."""
