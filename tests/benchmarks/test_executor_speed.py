"""Parallel speed-up of the Dask executor: 8 trials that each keep a worker busy for 0.5 s,
on 1 and on 2 worker processes, in the same run (cluster start-up not timed).

Run with `python -m pytest tests/benchmarks/test_executor_speed.py --benchmark-enable`; the ratio
of the two medians is the speed-up to report (ideal: 2).
"""

import pytest

from bench.executors import DaskExecutor
from bench.registry import Registry
from bench.runner import RunSpec, run
from bench.store import Store
from executor_problems import sleepy

TRIALS, SECONDS = 8, 0.5


@pytest.mark.slow
@pytest.mark.benchmark(group="dask-speed-up")
@pytest.mark.parametrize("workers", [1, 2])
def test_eight_half_second_trials(benchmark, tmp_path, workers):
    registry = Registry()
    registry.problems["test/sleepy"] = sleepy(SECONDS)
    spec = RunSpec("test/sleepy", "random", 0, TRIALS, "live", workers=workers)
    with DaskExecutor(workers) as executor:
        run(spec, Store(tmp_path / "warm-up.sqlite"), registry, executor=executor)  # workers create the problem
        stores = iter(Store(tmp_path / f"{i}.sqlite") for i in range(100))
        run_id = benchmark.pedantic(lambda: run(spec, next(stores), registry, executor=executor), rounds=3)
    assert run_id == 1
