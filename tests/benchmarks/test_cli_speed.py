"""Start-up cost of the light core: `bench list` against a bare interpreter, in the same run.

Run with `python -m pytest tests/benchmarks --benchmark-enable`; the ratio of the two
medians is the figure to report.
"""

import subprocess
import sys

import pytest


@pytest.mark.benchmark(group="cli-startup")
def test_python_pass(benchmark):
    benchmark(subprocess.run, [sys.executable, "-c", "pass"], check=True)


@pytest.mark.benchmark(group="cli-startup")
def test_bench_list(benchmark):
    benchmark(subprocess.run, [sys.executable, "-m", "bench", "list"], check=True, capture_output=True)
