"""Benchmarks: figures printed as tables (not timed tests). Run `make bench`."""
