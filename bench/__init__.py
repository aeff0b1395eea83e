"""Benchmarks: each prints measured figures and their ratio to a baseline or target, in one run."""
