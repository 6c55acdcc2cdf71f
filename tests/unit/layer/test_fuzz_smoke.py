"""The long fuzz run's machinery works (CI's short fuzzing is in test_images.py)."""

from tests.fuzz import fuzz


def test_a_short_fuzz_run_counts_executions_and_finds_no_crash() -> None:
    report = fuzz(seconds=1.0, batch=50)
    assert report.executions >= 50
    assert report.crashes == []
