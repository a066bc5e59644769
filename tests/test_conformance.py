"""One conformance suite for every registered optimizer, outside plugins included.

Each optimizer runs through the real runner on a mixed space (log float, ints, a
categorical, a conditional float, a fidelity) whose evaluation fails on one region and
diverges on another, with the objective count it supports; an optimizer that declares no
conditions (or no categoricals) gets the space without them (the categorical fixed).
"""

from __future__ import annotations

import math

import pytest
from ConfigSpace import Categorical, ConfigurationSpace, Constant, EqualsCondition, Float, Integer

from bench.problem import Objective, Problem
from bench.runner import RunSpec, run
from bench.space import Fidelity, validate
from bench.store import Store
from bench.trial import Result, Status
from conftest import checkout_registry

REGISTRY = checkout_registry()
# Problem-specific searches (a genotype of their own) are tested with their problem.
OPTIMIZERS = sorted(n for n in REGISTRY.optimizers if REGISTRY.optimizer(n).capabilities.genotype is None)
BUDGET = 12


class Mixed(Problem):
    """Smooth in every hyperparameter; raises for tanh with many layers, NaN at high learning rates."""

    objectives = (Objective("loss", "min"), Objective("size", "min"))
    fidelity = Fidelity("epochs", 1, 27)

    def __init__(self, mode: str = "live", *, conditional: bool = True, categorical: bool = True) -> None:
        super().__init__(mode)
        space = ConfigurationSpace({
            "learning_rate": Float("learning_rate", (1e-5, 1e-1), log=True),
            "rank": Integer("rank", (2, 64)),
            "layers": Integer("layers", (1, 16), log=True),
            "activation": (Categorical("activation", ["relu", "gelu", "tanh"]) if categorical
                           else Constant("activation", "relu")),
            "slope": Float("slope", (0.0, 0.5)),
        })
        if conditional and categorical:
            space.add(EqualsCondition(space["slope"], space["activation"], "relu"))
        self.space = space

    def evaluate(self, config, fidelity, seed):
        if config["activation"] == "tanh" and config["layers"] > 8:
            raise RuntimeError("exploded on purpose")
        loss = ((math.log10(config["learning_rate"]) + 3) ** 2 + (config["rank"] - 20) ** 2 / 400
                + {"relu": config.get("slope", 0.0), "gelu": 0.1, "tanh": 0.3}[config["activation"]]
                + 0.5 * (1 - fidelity / 27))
        if config["learning_rate"] > 0.03:
            loss = math.nan
        return Result({"loss": loss, "size": float(config["rank"] * config["layers"])}, cost=fidelity / 27)


def objectives_for(capabilities) -> tuple[str, ...]:
    return ("loss",) if capabilities.single_objective else ("loss", "size")


def mixed_for(capabilities) -> Mixed:
    return Mixed(conditional=capabilities.conditional, categorical=capabilities.categorical)


def run_mixed(name: str, store_path, seed: int = 0, budget: float = BUDGET):
    spec = REGISTRY.optimizer(name)
    store = Store(store_path)
    run_spec = RunSpec("test/mixed", name, seed, budget, "live", objectives=objectives_for(spec.capabilities))
    run_id = run(run_spec, store, REGISTRY, problem=mixed_for(spec.capabilities))
    return store.trials(run_id)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_proposals_are_valid_budget_is_kept_and_failures_are_survived(name, tmp_path):
    trials = run_mixed(name, tmp_path / "r.sqlite")
    problem = mixed_for(REGISTRY.optimizer(name).capabilities)
    for st in trials:
        assert validate(problem.space, st.trial.config) == st.trial.config
        if st.trial.fidelity is not None:
            problem.fidelity.check(st.trial.fidelity)
    used = [problem.fidelity.fraction(st.result.fidelity) for st in trials]
    assert sum(used) - used[-1] < BUDGET <= sum(used) + 1e-9  # stops at the first trial that reaches the budget
    statuses = {st.result.status for st in trials}
    assert statuses <= {Status.OK, Status.FAILED, Status.DIVERGED}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_same_seed_gives_the_same_trials(name, tmp_path):
    first = run_mixed(name, tmp_path / "a.sqlite", seed=7)
    second = run_mixed(name, tmp_path / "b.sqlite", seed=7)
    assert [(t.trial.config, t.trial.fidelity) for t in first] == [(t.trial.config, t.trial.fidelity) for t in second]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_failures_are_told_to_the_optimizer(name):
    spec = REGISTRY.optimizer(name)
    problem = mixed_for(spec.capabilities)
    optimizer = spec.create(problem, problem.select_objectives(objectives_for(spec.capabilities)), seed=0,
                            budget=BUDGET)
    [trial] = optimizer.ask(1)
    optimizer.tell([trial], [Result.failure("RuntimeError: on purpose", 0.1)])
    [trial] = optimizer.ask(1) or [None]
    if trial is not None:
        optimizer.tell([trial], [Result.failure("non-finite objective", 0.1, status=Status.DIVERGED)])
    assert optimizer.incumbent() == []


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS if REGISTRY.optimizer(n).capabilities.batch])
def test_batch_ask_returns_distinct_trials(name):
    spec = REGISTRY.optimizer(name)
    problem = mixed_for(spec.capabilities)
    optimizer = spec.create(problem, problem.select_objectives(objectives_for(spec.capabilities)), seed=0,
                            budget=BUDGET)
    trials = optimizer.ask(4)
    assert len(trials) == 4
    assert len({repr(sorted(t.config.items())) + repr(t.fidelity) for t in trials}) == 4


# Interrupt and resume: each optimizer on a cheap problem it can run, by what it supports.
def resume_problem(capabilities) -> tuple[str, float]:
    if capabilities.multi_fidelity:
        return "synthetic/hartmann6", 3
    return ("synthetic/branin", BUDGET) if capabilities.single_objective else ("synthetic/zdt1", BUDGET)


class Interrupting(Problem):
    """``problem``, except that its evaluation number ``at`` (from 0) raises KeyboardInterrupt, as a Ctrl-C there would."""

    def __init__(self, problem: Problem, at: int) -> None:
        super().__init__(problem.mode)
        self.inner, self.at, self.evaluations = problem, at, 0
        self.space, self.objectives, self.fidelity = problem.space, problem.objectives, problem.fidelity

    def evaluate(self, config, fidelity, seed):
        if self.evaluations == self.at:
            raise KeyboardInterrupt
        self.evaluations += 1
        return self.inner.evaluate(config, fidelity, seed)


def every_field(store: Store, run_id: int) -> list[tuple]:
    return [(st.number, st.trial.config, st.trial.fidelity, st.trial.info, st.result, st.worker, st.start, st.end)
            for st in store.trials(run_id)]


RESUMABLE = [(name, 1) for name in OPTIMIZERS] + [
    (name, 3) for name in OPTIMIZERS if REGISTRY.optimizer(name).capabilities.batch]


@pytest.mark.parametrize("name, workers", RESUMABLE)
def test_interrupted_at_several_points_and_resumed_equals_an_uninterrupted_run(name, workers, tmp_path):
    """Interrupted at the first, a middle and the last evaluation, resumed each time: every stored trial (its
    proposal, result, worker and simulated times) equals the uninterrupted run's, and the run completes."""
    problem_name, budget = resume_problem(REGISTRY.optimizer(name).capabilities)
    problem = REGISTRY.problem(problem_name).create("live")
    spec = RunSpec(problem_name, name, 3, budget, "live", workers)
    clean = Store(tmp_path / "clean.sqlite")
    expected = every_field(clean, run(spec, clean, REGISTRY, problem=problem))
    n = len(expected)
    store = Store(tmp_path / "interrupted.sqlite")
    for point in sorted({0, n // 2, n - 1}):
        stored = len(store.trials(1)) if store.runs() else 0
        with pytest.raises(KeyboardInterrupt):
            run(spec, store, REGISTRY, problem=Interrupting(problem, point - stored), resume=True)
        assert len(store.trials(1)) == point
    assert run(spec, store, REGISTRY, problem=problem, resume=True) == 1
    assert store.runs()[0]["status"] == "complete"
    assert every_field(store, 1) == expected


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
