"""Throughput and latency harness: ``make bench`` (``python -m benchmarks``)."""
