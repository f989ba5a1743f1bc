"""Benchmarks: each one starts the real components it measures (see docs/BENCHMARKS.md)."""
