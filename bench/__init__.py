"""Benchmarks that print figures (``python -m bench.<name>``); they never pass or fail on time."""
