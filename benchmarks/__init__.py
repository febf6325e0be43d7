"""Benchmarks: JSON (and a PNG plot) under reports/benchmarks/, never timings asserted in tests (DESIGN §7)."""
