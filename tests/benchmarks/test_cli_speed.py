"""Start-up cost of the light core: `bench list` against a bare interpreter, in the same run.

Run with `python -m pytest tests/benchmarks --benchmark-enable`; the ratio of the two medians is the
figure to report (goal: at most 3x). Both processes run as Python normally does, caching bytecode (a
PYTHONDONTWRITEBYTECODE in the environment would make every start compile bench from source, which is
not what a user's `bench list` does after the first one); the first round writes the cache.
"""

import os
import subprocess
import sys

import pytest

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@pytest.mark.benchmark(group="cli-startup")
def test_python_pass(benchmark):
    benchmark.pedantic(subprocess.run, ([sys.executable, "-c", "pass"],), {"check": True, "env": ENV},
                       rounds=20, warmup_rounds=2)


@pytest.mark.benchmark(group="cli-startup")
def test_bench_list(benchmark):
    benchmark.pedantic(subprocess.run, ([sys.executable, "-m", "bench", "list"],),
                       {"check": True, "capture_output": True, "env": ENV}, rounds=20, warmup_rounds=2)
