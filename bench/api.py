"""The Python API, for notebooks and scripts: run benchmarks, read results as a DataFrame, and use a
problem as a plain objective function (inside an Optuna study, say). The CLI's `run`, `show` and
`export` are built on the same calls, so both give the same runs and rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.registry import Registry

DEFAULT_STORE = "bench-results.sqlite"


def plan(registry: Registry, problems: Sequence[str], optimizers: Sequence[str], seeds: Iterable[int], budget: float,
         *, mode: str | None = None, workers: int = 1, max_cost: float | None = None,
         objectives: Sequence[str] | None = None, trial_timeout: float | None = None, noise: bool | None = None,
         surrogate: str | None = None):
    """Create each problem once and check every (problem, optimizer) pair before anything runs or
    any file is written; return ``(problems by name, run specs)``."""
    from bench import runner
    from bench.optimizer import check_supported

    objectives = tuple(objectives) if objectives else None
    options = {k: v for k, v in (("noise", noise), ("surrogate", surrogate)) if v is not None}
    instances = {name: registry.problem(name).create(mode, **options) for name in dict.fromkeys(problems)}
    for name in dict.fromkeys(optimizers):
        registry.optimizer(name).load()
        capabilities = registry.optimizer(name).capabilities
        for problem in instances.values():
            check_supported(name, capabilities, problem, problem.select_objectives(objectives))
    specs = [runner.RunSpec(p, o, s, budget, instances[p].mode, workers, max_cost, objectives, trial_timeout, noise,
                            surrogate)
             for p in instances for o in dict.fromkeys(optimizers) for s in seeds]
    return instances, specs


def open_store(path: str | Path, specs, resume: bool):
    """The store the runs go to; a run it already holds is refused unless resuming (a run has one identity)."""
    from bench import runner
    from bench.store import Store

    store = Store(path)
    for spec in specs if not resume else ():
        runner.refuse_rerun(spec, store)
    return store


def run(problems: str | Sequence[str], optimizers: str | Sequence[str], *, seeds: Iterable[int] = (0,),
        budget: float = 50.0, mode: str | None = None, objectives: Sequence[str] | None = None,
        trial_timeout: float | None = None, noise: bool | None = None, surrogate: str | None = None,
        store: str | Path = DEFAULT_STORE, resume: bool = False, registry: Registry | None = None) -> list[int]:
    """Run every problem x optimizer x seed (in this process, on the simulated clock) into ``store``;
    return the run ids."""
    from bench import runner

    registry = registry or Registry()
    instances, specs = plan(registry, [problems] if isinstance(problems, str) else problems,
                            [optimizers] if isinstance(optimizers, str) else optimizers, list(seeds), budget,
                            mode=mode, objectives=objectives, trial_timeout=trial_timeout, noise=noise,
                            surrogate=surrogate)
    results = open_store(store, specs, resume)
    try:
        return [runner.run(spec, results, registry, problem=instances[spec.problem], resume=resume) for spec in specs]
    finally:
        results.close()


def existing_store(path: str | Path):
    """The store at ``path``; reading never creates one (a mistyped path is an error)."""
    from bench.store import Store, StoreError

    if not Path(path).is_file():
        raise StoreError(f"no results store at {path}; pass the --store that `bench run` wrote (or set $BENCH_STORE)")
    return Store(path)


def results(store: str | Path = DEFAULT_STORE, problem: str | None = None):
    """Every stored trial as a pandas DataFrame, one row per trial: the run's problem, optimizer, seed,
    mode and id, status, cost, times, ``config.*`` and ``objective.*`` columns (what `bench export` writes)."""
    from bench.hookspecs import require

    require(("pandas",), "bench-llm[leaderboard]", "bench.results")
    return existing_store(store).trial_table(problem)[0].to_pandas()


class ObjectiveFunction:
    """A problem as a plain function: ``f(config, fidelity=None, seed=0)`` returns its objectives as a
    dict, and raises ``EvaluationFailed`` (with the status and error) where a run would store a failure."""

    def __init__(self, problem: str, mode: str | None = None, registry: Registry | None = None) -> None:
        self.problem = (registry or Registry()).problem(problem).create(mode)
        self.space, self.objectives, self.fidelity = self.problem.space, self.problem.objectives, self.problem.fidelity

    def __call__(self, config: dict[str, Any], fidelity: float | None = None, seed: int = 0) -> dict[str, float]:
        from bench.space import validate
        from bench.trial import Trial

        result = self.problem.evaluate_trial(Trial(validate(self.space, config), fidelity), seed)
        if not result.ok:
            raise EvaluationFailed(f"{result.status.value}: {result.error}")
        return dict(result.objectives)


class EvaluationFailed(RuntimeError):
    """The evaluation failed, timed out or diverged (the message says which, and why)."""


def objective(problem: str, mode: str | None = None) -> ObjectiveFunction:
    return ObjectiveFunction(problem, mode)
