"""Shared test helpers (importable as `helpers.*`: pyproject puts tests/ on pytest's pythonpath, and the
sweep subprocesses get it on PYTHONPATH, so Ray workers can unpickle the test sinks and hooks)."""
