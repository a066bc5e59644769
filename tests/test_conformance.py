"""One conformance suite for every registered optimizer, outside plugins included: bench.testing's checks
(the ones an outside plugin runs in its own tests), and interruption on real worker processes."""

from __future__ import annotations

import pytest

from bench.runner import RunSpec, run
from bench.store import Store
from bench.testing import CHECKS, every_field, resume_problem
from conftest import checkout_registry

REGISTRY = checkout_registry()
# Problem-specific searches (a genotype of their own) are tested with their problem.
OPTIMIZERS = sorted(n for n in REGISTRY.optimizers if REGISTRY.optimizer(n).capabilities.genotype is None)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_conformance(name, check, tmp_path):
    check(REGISTRY, name, tmp_path)


def proposals_and_results(store: Store, run_id: int) -> list[tuple]:
    """A run's trials without where and when they ran (real workers: real times)."""
    return [row[:5] for row in every_field(store, run_id)]


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["process", "dask"])
@pytest.mark.parametrize("name, workers", [("sa", 1), ("nsga2", 2)])
def test_interrupted_on_real_workers_and_resumed_equals_an_uninterrupted_run(executor, name, workers, tmp_path):
    """The client interrupted mid-run (trials still running on the workers), resumed on the same executor."""
    from bench.executors import make_executor

    problem_name, budget = resume_problem(REGISTRY.optimizer(name).capabilities)
    spec = RunSpec(problem_name, name, 3, budget, "live", workers)

    def interrupt(told, used):
        if told == budget // 2:
            raise KeyboardInterrupt

    with make_executor(executor, workers) as running:
        clean = Store(tmp_path / "clean.sqlite")
        expected = proposals_and_results(clean, run(spec, clean, REGISTRY, executor=running))
        store = Store(tmp_path / "interrupted.sqlite")
        with pytest.raises(KeyboardInterrupt):
            run(spec, store, REGISTRY, executor=running, progress=interrupt)
        assert 0 < len(store.trials(1)) < len(expected)
        assert run(spec, store, REGISTRY, executor=running, resume=True) == 1
    assert proposals_and_results(store, 1) == expected
