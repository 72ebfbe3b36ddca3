"""Benchmarks: one command per benchmark, each writing its results into docs/ (see bench/*.py)."""
