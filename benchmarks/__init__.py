"""Performance benchmarks of hashbench (run as modules, e.g. ``python -m benchmarks.eval``); never timed tests."""
