"""Benchmarks of pytest-fwgates: each prints ratios against its peers, measured in one run."""
