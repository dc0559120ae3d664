"""Runner's benchmark harness: ``python -m benchmarks.run`` (see README, "Benchmarks")."""
