"""The conformance suite for optimizers, for the suite's own and for outside plugins (as ``optuna.testing``
serves Optuna's samplers): a plugin package runs it in its own tests, e.g.

    import pytest
    from bench.registry import Registry
    from bench.testing import CHECKS

    @pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
    def test_conformance(check, tmp_path):
        check(Registry(), "my-optimizer", tmp_path)

Each check runs the optimizer through the real runner: on a mixed space (a log float, integers, a
categorical, a conditional float and a fidelity) whose evaluation fails in one region and diverges in
another, with the objective count it supports (an optimizer that declares no conditions or no categoricals
gets the space without them); then interrupted at several points and resumed, on 1 and 3 workers. A check
that does not apply to the optimizer (batch asks of one that declares ``batch=False``) is skipped.
"""

from __future__ import annotations

import math
from pathlib import Path

from ConfigSpace import Categorical, ConfigurationSpace, Constant, EqualsCondition, Float, Integer

from bench.hookspecs import Capabilities
from bench.problem import Objective, Problem
from bench.registry import Registry
from bench.runner import RunSpec, run
from bench.space import Fidelity, validate
from bench.store import Store
from bench.trial import Result, Status, StoredTrial

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

    @classmethod
    def fitting(cls, capabilities: Capabilities) -> Mixed:
        return cls(conditional=capabilities.conditional, categorical=capabilities.categorical)

    def evaluate(self, config, fidelity, seed):
        if config["activation"] == "tanh" and config["layers"] > 8:
            raise RuntimeError("exploded on purpose")
        loss = ((math.log10(config["learning_rate"]) + 3) ** 2 + (config["rank"] - 20) ** 2 / 400
                + {"relu": config.get("slope", 0.0), "gelu": 0.1, "tanh": 0.3}[config["activation"]]
                + 0.5 * (1 - fidelity / 27))
        if config["learning_rate"] > 0.03:
            loss = math.nan
        return Result({"loss": loss, "size": float(config["rank"] * config["layers"])}, cost=fidelity / 27)


def objectives_for(capabilities: Capabilities) -> tuple[str, ...]:
    return ("loss",) if capabilities.single_objective else ("loss", "size")


def run_mixed(registry: Registry, name: str, store_path: Path, seed: int = 0) -> list[StoredTrial]:
    capabilities = registry.optimizer(name).capabilities
    store = Store(store_path)
    spec = RunSpec("test/mixed", name, seed, BUDGET, "live", objectives=objectives_for(capabilities))
    return store.trials(run(spec, store, registry, problem=Mixed.fitting(capabilities)))


def check_proposals_are_valid_the_budget_is_kept_and_failures_are_survived(registry, name, folder) -> None:
    trials = run_mixed(registry, name, Path(folder) / "valid.sqlite")
    problem = Mixed.fitting(registry.optimizer(name).capabilities)
    for st in trials:
        assert validate(problem.space, st.trial.config) == st.trial.config, st.trial.config
        if st.trial.fidelity is not None:
            problem.fidelity.check(st.trial.fidelity)
    used = [problem.fidelity.fraction(st.result.fidelity) for st in trials]
    assert sum(used) - used[-1] < BUDGET <= sum(used) + 1e-9, "a run stops at the first trial that reaches its budget"
    assert {st.result.status for st in trials} <= {Status.OK, Status.FAILED, Status.DIVERGED}


def check_the_same_seed_gives_the_same_trials(registry, name, folder) -> None:
    first, second = (run_mixed(registry, name, Path(folder) / f"seed-{i}.sqlite", seed=7) for i in (1, 2))
    assert [(t.trial.config, t.trial.fidelity) for t in first] == [(t.trial.config, t.trial.fidelity) for t in second]


def _created(registry: Registry, name: str):
    spec = registry.optimizer(name)
    problem = Mixed.fitting(spec.capabilities)
    return spec.create(problem, problem.select_objectives(objectives_for(spec.capabilities)), seed=0, budget=BUDGET)


def check_failures_are_told_and_never_the_incumbent(registry, name, folder) -> None:
    optimizer = _created(registry, name)
    [trial] = optimizer.ask(1)
    optimizer.tell([trial], [Result.failure("RuntimeError: on purpose", 0.1)])
    [trial] = optimizer.ask(1) or [None]
    if trial is not None:
        optimizer.tell([trial], [Result.failure("non-finite objective", 0.1, status=Status.DIVERGED)])
    assert optimizer.incumbent() == []


def check_a_batch_ask_returns_distinct_trials(registry, name, folder) -> None:
    import pytest

    if not registry.optimizer(name).capabilities.batch:
        pytest.skip(f"{name} declares batch=False")
    trials = _created(registry, name).ask(4)
    assert len(trials) == 4
    assert len({repr(sorted(t.config.items())) + repr(t.fidelity) for t in trials}) == 4


class Interrupting(Problem):
    """``problem``, except that its evaluation number ``at`` (from 0) raises KeyboardInterrupt, as a Ctrl-C there
    would."""

    def __init__(self, problem: Problem, at: int) -> None:
        super().__init__(problem.mode)
        self.inner, self.at, self.evaluations = problem, at, 0
        self.space, self.objectives, self.fidelity = problem.space, problem.objectives, problem.fidelity

    def evaluate(self, config, fidelity, seed):
        if self.evaluations == self.at:
            raise KeyboardInterrupt
        self.evaluations += 1
        return self.inner.evaluate(config, fidelity, seed)


def resume_problem(capabilities: Capabilities) -> tuple[str, float]:
    """A cheap built-in problem the optimizer can run, and a budget."""
    if capabilities.multi_fidelity:
        return "synthetic/hartmann6", 3
    return ("synthetic/branin", BUDGET) if capabilities.single_objective else ("synthetic/zdt1", BUDGET)


def every_field(store: Store, run_id: int) -> list[tuple]:
    return [(st.number, st.trial.config, st.trial.fidelity, st.trial.info, st.result, st.worker, st.start, st.end)
            for st in store.trials(run_id)]


def check_interrupted_at_several_points_and_resumed_equals_an_uninterrupted_run(registry, name, folder,
                                                                                  workers: int = 1) -> None:
    """Interrupted at the first, a middle and the last evaluation, resumed each time: every stored trial (its
    proposal, result, worker and simulated times) equals the uninterrupted run's, and the run completes."""
    import pytest

    capabilities = registry.optimizer(name).capabilities
    if workers > 1 and not capabilities.batch:
        pytest.skip(f"{name} declares batch=False: it runs on one worker")
    problem_name, budget = resume_problem(capabilities)
    problem = registry.problem(problem_name).create("live")
    spec = RunSpec(problem_name, name, 3, budget, "live", workers)
    clean = Store(Path(folder) / f"clean-{workers}.sqlite")
    expected = every_field(clean, run(spec, clean, registry, problem=problem))
    n = len(expected)
    store = Store(Path(folder) / f"interrupted-{workers}.sqlite")
    for point in sorted({0, n // 2, n - 1}):
        stored = len(store.trials(1)) if store.runs() else 0
        with pytest.raises(KeyboardInterrupt):
            run(spec, store, registry, problem=Interrupting(problem, point - stored), resume=True)
        assert len(store.trials(1)) == point
    assert run(spec, store, registry, problem=problem, resume=True) == 1
    assert store.runs()[0]["status"] == "complete"
    assert every_field(store, 1) == expected


def check_interrupted_on_three_workers_and_resumed_equals_an_uninterrupted_run(registry, name, folder) -> None:
    check_interrupted_at_several_points_and_resumed_equals_an_uninterrupted_run(registry, name, folder, workers=3)


CHECKS = (
    check_proposals_are_valid_the_budget_is_kept_and_failures_are_survived,
    check_the_same_seed_gives_the_same_trials,
    check_failures_are_told_and_never_the_incumbent,
    check_a_batch_ask_returns_distinct_trials,
    check_interrupted_at_several_points_and_resumed_equals_an_uninterrupted_run,
    check_interrupted_on_three_workers_and_resumed_equals_an_uninterrupted_run,
)
