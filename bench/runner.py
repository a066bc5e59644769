"""The one loop: ask, evaluate, store, tell, under a budget, with failures kept as data.

Resume works by replay: the optimizer is rebuilt with the same seed and asked again;
each trial already in the store is told its stored result instead of being evaluated
(the proposal must match, or the run refuses to continue), and only the missing trials
run. Same inputs in table mode therefore give the same trials bit for bit.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from bench import __version__
from bench.clock import SimulatedClock
from bench.optimizer import check_supported
from bench.problem import Problem
from bench.registry import Registry
from bench.space import InvalidConfiguration
from bench.store import Store, StoredTrial
from bench.trial import Result, Status, Trial


FLUSH_SECONDS = 0.5  # at most this much work (wall time) is ever uncommitted


class ResumeMismatch(RuntimeError):
    """The optimizer proposed something other than what the store holds for that trial."""


@dataclass(frozen=True)
class RunSpec:
    problem: str
    optimizer: str
    seed: int
    budget: float  # full-fidelity-equivalent evaluations
    mode: str
    workers: int = 1
    max_cost: float | None = None  # stop proposing once trials' summed cost reaches this (seconds)
    objectives: tuple[str, ...] | None = None  # None: the problem's default objectives

    def __post_init__(self) -> None:
        if not self.budget > 0:
            raise ValueError(f"budget must be positive, got {self.budget}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.max_cost is not None and not self.max_cost > 0:
            raise ValueError(f"max cost must be positive, got {self.max_cost}")

    @property
    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def evaluate(problem: Problem, trial: Trial, seed: int) -> Result:
    """Evaluate one trial; an exception (out of memory included) becomes a failed Result."""
    fidelity = trial.fidelity
    started = time.perf_counter()
    try:
        if problem.fidelity is not None:
            fidelity = problem.fidelity.check(problem.fidelity.max if fidelity is None else fidelity)
        result = problem.evaluate(trial.config, fidelity, seed)
    except InvalidConfiguration:
        raise  # the optimizer broke the contract: that is a bug to surface, not a data point
    except Exception as exc:  # noqa: BLE001 - failures are data
        status = Status.TIMEOUT if isinstance(exc, TimeoutError) else Status.FAILED
        return Result.failure(f"{type(exc).__name__}: {exc}", time.perf_counter() - started, status, fidelity=fidelity)
    if result.fidelity is None and fidelity is not None:
        result = replace(result, fidelity=fidelity)
    return result.checked([o.name for o in problem.objectives])


def hardware() -> dict[str, object]:
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "system": platform.platform(),
        "python": platform.python_version(),
    }


def run(
    spec: RunSpec,
    store: Store,
    registry: Registry,
    *,
    problem: Problem | None = None,
    resume: bool = False,
    progress: Callable[[int, float], None] | None = None,
) -> int:
    """Run (or resume) one (problem, optimizer, seed); return the run id in ``store``.

    ``problem`` reuses an instance already created for ``spec.mode`` (a loaded table, say);
    ``progress(trials_done, budget_used)`` is called after each told trial.
    """
    optimizer_spec = registry.optimizer(spec.optimizer)
    problem = problem or registry.problem(spec.problem).create(spec.mode)
    objectives = problem.select_objectives(spec.objectives)
    check_supported(spec.optimizer, optimizer_spec.capabilities, problem, objectives)
    optimizer = optimizer_spec.create(problem, objectives, seed=spec.seed, budget=spec.budget)

    run_id = store.unfinished_run(spec.key) if resume else None
    if resume and run_id is None and (done_id := store.complete_run(spec.key)) is not None:
        return done_id
    stored: dict[int, StoredTrial] = {}
    if run_id is None:
        card = {
            **asdict(spec),
            "suite_version": __version__,
            "plugins": registry.versions(),
            "problem_info": problem.describe(),
            "optimized_objectives": [o.name for o in objectives],
            "optimizer_capabilities": optimizer_spec.capabilities.to_dict(),
            "hardware": hardware(),
            "command": sys.argv,
        }
        run_id = store.create_run(spec.key, card)
    else:
        stored = {st.number: st for st in store.trials(run_id)}

    try:
        _loop(spec, store, run_id, problem, optimizer, stored, progress)
    finally:
        store.flush()  # an exception or Ctrl-C keeps every evaluated trial
    store.finish_run(run_id)
    return run_id


def _loop(spec, store, run_id, problem, optimizer, stored, progress) -> None:
    clock = SimulatedClock(spec.workers)
    flushed = time.perf_counter()
    fraction = problem.fidelity.fraction if problem.fidelity else (lambda _: 1.0)
    used = cost = 0.0
    number = told = 0
    while True:
        while clock.has_free_worker and used < spec.budget and (spec.max_cost is None or cost < spec.max_cost):
            proposals = optimizer.ask(1)
            if not proposals:
                break
            trial = proposals[0]
            if number in stored:
                previous = stored.pop(number)
                if previous.trial.config != trial.config or previous.trial.fidelity != trial.fidelity:
                    raise ResumeMismatch(
                        f"cannot resume run {run_id}: trial {number} was {previous.trial.config}, the optimizer now"
                        f" proposes {trial.config}; it is not deterministic, start a new run without --resume"
                    )
                result = previous.result
                event = clock.start(result.cost, (number, trial, result))
            else:
                result = evaluate(problem, trial, spec.seed)
                event = clock.start(result.cost, (number, trial, result))
                store.add_trial(run_id, StoredTrial(number, trial, result, event.worker, event.start, event.end))
                if time.perf_counter() - flushed > FLUSH_SECONDS:
                    store.flush()
                    flushed = time.perf_counter()
            used += fraction(result.fidelity)
            cost += result.cost
            number += 1
        if not clock.pending:
            break
        _, trial, result = clock.next().payload
        optimizer.tell([trial], [result])
        told += 1
        if progress:
            progress(told, min(used, spec.budget))
