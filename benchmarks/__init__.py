"""Benchmark suite: ``python -m benchmarks`` runs every benchmark and writes BENCHMARKS.md."""
