"""Table lookups and the runner's overhead on a table problem.

Targets (issue 4): exact lookup <= 20 us median, surrogate lookup <= 1 ms, and 10,000 trials
of `random` through the whole runner (store included) at most 10% over the same trials as
bare ask / lookup / tell. Compare `test_runner_10000_random` with `test_bare_10000_random`.

Surrogate queries (issue 15): one off-table lookup <= 50 us, a batch <= 5 us a query. The floor
each is measured against, in the same run: the stored forest walked in numpy as one vectorized
pass over all its trees (`test_numpy_walk_one_query`, per query also for the batch). A batch takes
the cores it may use; `test_batch_of_10000_queries_cpu_time` gives its cost on one.

A table's held-out GP folds (400 rows of the SmolLM2 table): fitted in two processes against one
after the other, the same predictions either way (group held-out-folds).
"""

import itertools
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pytest

from bench.registry import Registry
from bench.runner import RunSpec, run
from bench.store import Store
from bench.tables import Table, surrogate_quality

PROBLEM = "lora-hpo/llama-3.2-1b-alpaca"
TRIALS = 10_000


@pytest.fixture(scope="module")
def registry():
    return Registry()


@pytest.fixture(scope="module")
def problem(registry):
    return registry.problem(PROBLEM).create("table")


@pytest.mark.benchmark(group="lookup")
def test_exact_lookup(benchmark, problem):
    config = problem.table.configs[17]
    result = benchmark(problem.evaluate, config, None, 0)
    assert result.source == "table"


@pytest.fixture(scope="module")
def off_table(problem):
    """1,000 configurations the table did not measure, taken in turn: one point asked again and again would
    let the CPU learn its way through the trees, which a run's new points never do."""
    configs = [dict(c) for c in problem.space.sample_configuration(1000)]
    assert all(problem.table.lookup(c, 0, "surrogate").source == "surrogate" for c in configs)
    return itertools.cycle(configs)


@pytest.mark.benchmark(group="lookup")
def test_surrogate_lookup(benchmark, problem, off_table):
    """What a run pays per off-table trial: the check, the prediction and the noise draw."""
    result = benchmark(lambda: problem.evaluate(next(off_table), None, 0))
    assert result.source == "surrogate" and result.extra["noise_free"] != result.objectives


@pytest.fixture(scope="module")
def points(problem):
    return np.random.default_rng(0).random((10_000, len(problem.table.params)))


@pytest.mark.benchmark(group="surrogate-query")
def test_numpy_walk_one_query(benchmark, problem, points):
    forest = problem.table.surrogate("random-forest")
    benchmark(forest.leaves, points[:1], False)


@pytest.mark.benchmark(group="surrogate-query")
def test_off_table_lookup(benchmark, problem, off_table):
    result = benchmark(lambda: problem.table.lookup(next(off_table), 0, "surrogate"))
    assert result.source == "surrogate"


@pytest.mark.benchmark(group="surrogate-batch")
def test_batch_of_10000_queries(benchmark, problem, points):
    predicted = benchmark(problem.table.predict_many, points)
    assert len(predicted["hellaswag_acc"]) == len(points)


@pytest.mark.benchmark(group="surrogate-batch-cpu", timer=time.process_time)
def test_batch_of_10000_queries_cpu_time(benchmark, problem, points):
    """The same batch in CPU time, every thread's added up: what it costs on one core."""
    benchmark(problem.table.predict_many, points)


def bare(registry, problem):
    optimizer = registry.optimizer("random").create(problem, problem.select_objectives(), seed=0, budget=TRIALS)
    for _ in range(TRIALS):
        [trial] = optimizer.ask(1)
        optimizer.tell([trial], [problem.evaluate(trial.config, None, 0)])


@pytest.mark.benchmark(group="runner-10000")
def test_bare_10000_random(benchmark, registry, problem):
    benchmark.pedantic(bare, args=(registry, problem), rounds=3, iterations=1)


@pytest.mark.benchmark(group="runner-10000")
def test_runner_10000_random(benchmark, registry, problem, tmp_path):
    counter = iter(range(100))

    def through_runner():
        store = Store(tmp_path / f"r{next(counter)}.sqlite")
        run_id = run(RunSpec(PROBLEM, "random", 0, TRIALS, "table"), store, registry, problem=problem)
        return store, run_id

    store, run_id = benchmark.pedantic(through_runner, rounds=3, iterations=1)
    assert len(store.trials(run_id)) == TRIALS


@pytest.fixture(scope="module")
def folds_data():
    table = Table("lora-hpo-smollm2-135m-wordnet")
    x, y = table.x[:400], table.values[table.objectives[0]][:400]
    groups = [tuple(row) for row in x]
    return x, y, groups, surrogate_quality(x, y, groups, family="gp")


@pytest.mark.benchmark(group="held-out-folds")
def test_gp_folds_one_after_the_other(benchmark, folds_data):
    x, y, groups, _ = folds_data
    benchmark.pedantic(surrogate_quality, args=(x, y, groups), kwargs={"family": "gp"}, rounds=1, iterations=1)


@pytest.mark.benchmark(group="held-out-folds")
def test_gp_folds_in_two_processes(benchmark, folds_data):
    x, y, groups, serial = folds_data
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        quality = benchmark.pedantic(surrogate_quality, args=(x, y, groups), kwargs={"family": "gp", "pool": pool},
                                     rounds=1, iterations=1)
    assert quality == serial
