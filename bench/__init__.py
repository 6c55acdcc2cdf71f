"""`python -m bench`: the project's performance figures in one table (see docs/BENCHMARKS.md)."""
