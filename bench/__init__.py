"""Benchmarks, run from the repository's root as modules: `.venv/bin/python -m bench.live_bench` (docs/benchmark.md)."""
