"""Testing: the benchmark as a unit-test suite (scoring, verdicts, results in notes)."""
