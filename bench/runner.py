"""The one loop: ask, evaluate, store, tell, under a budget, with failures kept as data.

Resume works by replay: the optimizer is rebuilt with the same seed and asked again;
each proposal that matches the trial stored under its number is told the stored result
instead of being evaluated, as the optimizer's own Trial object (an optimizer may key its
state on it), and only the missing trials run. Any other proposal, or none where the store
holds one, stops the resume with ResumeMismatch. Same inputs in table mode therefore give
the same trials bit for bit.

Where trials run is the executor's business (bench/executors.py): in-process on simulated
workers by default, or on real worker processes; an optimizer that cannot be asked while
trials are running is run batch-synchronously (ask a batch, wait for all, tell all).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from bench import __version__
from bench.executors import Executor, LocalExecutor
from bench.optimizer import Optimizer, check_supported
from bench.problem import Problem
from bench.registry import Registry, UnknownName
from bench.store import Store
from bench.trial import StoredTrial, Trial

FLUSH_SECONDS = 0.5  # at most this much work (wall time) is ever uncommitted


class ResumeMismatch(RuntimeError):
    """The optimizer proposed something other than what the store holds for that trial."""


class RunExists(RuntimeError):
    """The store already holds a run with these inputs; a run has one identity, so it is never added twice."""


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
    trial_timeout: float | None = None  # seconds: a trial that runs or costs longer is stored as timeout
    noise: bool | None = None  # table mode: observe with the table's noise (None: the problem's default, noisy)
    surrogate: str | None = None  # table mode: the surrogate family answering unmeasured configurations

    def __post_init__(self) -> None:
        if not 0 < self.budget < math.inf:
            raise ValueError(f"budget must be positive and finite, got {self.budget}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.max_cost is not None and not 0 < self.max_cost < math.inf:
            raise ValueError(f"max cost must be positive and finite, got {self.max_cost}")
        if self.trial_timeout is not None and not 0 < self.trial_timeout < math.inf:
            raise ValueError(f"trial timeout must be positive and finite seconds, got {self.trial_timeout}")

    @property
    def key(self) -> str:
        fields = asdict(self)
        for option in ("trial_timeout", "noise", "surrogate"):  # runs stored before an option existed keep
            if fields[option] is None:                            # their identity
                del fields[option]
        return json.dumps(fields, sort_keys=True)

    @property
    def problem_options(self) -> dict[str, object]:
        """What creating the problem takes beyond its mode (table options, only where given)."""
        return {k: v for k, v in (("noise", self.noise), ("surrogate", self.surrogate)) if v is not None}


def refuse_rerun(spec: RunSpec, store: Store) -> None:
    """Raise RunExists when ``store`` already holds the run ``spec`` (finished or not)."""
    if (run_id := store.unfinished_run(spec.key) or store.complete_run(spec.key)) is not None:
        raise RunExists(f"run {run_id} ({spec.problem}, {spec.optimizer}, seed {spec.seed}) is already in {store.path};"
                        f" continue it with --resume, or remove it with `bench runs delete {run_id}`")


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; platform.processor() there is often empty or the architecture)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, object]:
    return {
        "machine": platform.machine(),
        "processor": cpu_model(),
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
    optimizer: Optimizer | None = None,
    resume: bool = False,
    progress: Callable[[int, float], None] | None = None,
    executor: Executor | None = None,
) -> int:
    """Run (or resume) one (problem, optimizer, seed); return the run id in ``store``.

    ``problem`` reuses an instance already created for ``spec.mode`` (a loaded table, say);
    ``optimizer`` is a fresh instance to use instead of the registry's ``spec.optimizer`` (a fixed
    design needs no plugin; resume replays it, so it must propose the same trials every time);
    ``progress(trials_done, budget_used)`` is called after each told trial; ``executor`` runs
    the trials (default: in-process on ``spec.workers`` simulated workers).
    """
    executor = executor or LocalExecutor(spec.workers)
    if executor.workers != spec.workers:
        raise ValueError(f"the executor has {executor.workers} workers, the run {spec.workers}")
    optimizer_spec = None if optimizer else registry.optimizer(spec.optimizer)
    try:
        problem_spec = registry.problem(spec.problem)
    except UnknownName:
        if problem is None:
            raise
        problem_spec = None  # an instance passed in, not registered: only the local executor can run it
    problem = problem or problem_spec.create(spec.mode, **spec.problem_options)
    objectives = problem.select_objectives(spec.objectives)
    capabilities = optimizer.capabilities if optimizer else optimizer_spec.capabilities
    check_supported(spec.optimizer, capabilities, problem, objectives)
    optimizer = optimizer or optimizer_spec.create(problem, objectives, seed=spec.seed, budget=spec.budget)
    batch = ASYNCHRONOUS if capabilities.asynchronous else spec.workers if capabilities.batch else 1

    if not resume:
        refuse_rerun(spec, store)
    run_id = store.unfinished_run(spec.key) if resume else None
    if resume and run_id is None and (done_id := store.complete_run(spec.key)) is not None:
        return done_id
    stored: dict[int, StoredTrial] = {}
    if run_id is None:
        card = {
            **asdict(spec),
            "suite_version": __version__,
            "plugins": registry.versions(),
            "providers": {"problem": registry.provider("problem", spec.problem),
                          "optimizer": registry.provider("optimizer", spec.optimizer) if optimizer_spec else None},
            "problem_info": problem.describe(),
            "optimized_objectives": [o.name for o in objectives],
            "optimizer_capabilities": capabilities.to_dict(),
            "executor": {**executor.describe(), "mode": "asynchronous" if batch is ASYNCHRONOUS
                         else f"batch-synchronous ({batch} per batch)"},
            "hardware": hardware(),
            "command": sys.argv,
        }
        run_id = store.create_run(spec.key, card)
    else:
        stored = {st.number: st for st in store.trials(run_id)}

    executor.open(problem, problem_spec, spec.seed, max((st.end for st in stored.values()), default=0.0),
                  spec.trial_timeout, spec.problem_options)
    try:
        _Loop(spec, store, run_id, problem, optimizer, stored, executor, batch).run(progress)
    finally:
        store.flush()  # an exception or Ctrl-C keeps every evaluated trial
    store.finish_run(run_id)
    return run_id


ASYNCHRONOUS = None  # a _Loop's batch size when a free worker asks for one trial at once


class _Loop:
    """One run's ask-evaluate-store-tell loop. Asynchronous (``batch`` ASYNCHRONOUS): a free worker asks for one
    trial at once. Batch-synchronous: ask ``batch`` trials, wait for all, tell them together in proposal order.
    A result is counted against the budget (and stored) as soon as it is known, and told when its worker
    finishes (simulated or real). On resume, ``stored`` trials are replayed instead of evaluated."""

    def __init__(self, spec: RunSpec, store: Store, run_id: int, problem: Problem, optimizer: Optimizer,
                 stored: dict[int, StoredTrial], executor: Executor, batch: int | None) -> None:
        self.spec, self.store, self.run_id, self.optimizer = spec, store, run_id, optimizer
        self.stored, self.executor, self.batch = stored, executor, batch
        self.fraction = problem.fidelity.fraction if problem.fidelity else (lambda _: 1.0)
        self.used = self.cost = 0.0  # budget (full-fidelity equivalents) and cost (seconds) so far
        self.number = self.told = 0  # trials proposed and told
        self.counted: set[int] = set()
        self.planned: dict[int, float] = {}  # budget share of trials still running remotely, until their result is known
        self.flushed = time.perf_counter()

    def budget_left(self) -> bool:
        return self.used < self.spec.budget and (self.spec.max_cost is None or self.cost < self.spec.max_cost)

    def count(self, st: StoredTrial) -> None:
        if st.number in self.counted:
            return
        self.counted.add(st.number)
        self.used += self.fraction(st.result.fidelity) - self.planned.pop(st.number, 0.0)
        self.cost += st.result.cost
        if st.number not in self.stored:
            self.store.add_trial(self.run_id, st)
            if time.perf_counter() - self.flushed > FLUSH_SECONDS:
                self.store.flush()
                self.flushed = time.perf_counter()

    def launch(self, trial: Trial) -> None:
        number = self.number
        if number in self.stored:
            previous = self.stored[number]
            if previous.trial.config != trial.config or previous.trial.fidelity != trial.fidelity:
                raise ResumeMismatch(
                    f"cannot resume run {self.run_id}: trial {number} was {previous.trial.config}, the optimizer now"
                    f" proposes {trial.config}; it is not deterministic, start a new run without --resume"
                )
            # The optimizer is told about its own Trial object: it may key its state on it.
            previous = self.stored[number] = replace(previous, trial=trial)
            self.executor.replay(previous)
            self.count(previous)
        elif (done := self.executor.submit(number, trial)) is not None:
            self.count(done)
        else:
            self.planned[number] = self.fraction(trial.fidelity)
            self.used += self.planned[number]
        self.number += 1

    def run(self, progress: Callable[[int, float], None] | None) -> None:
        executor, name = self.executor, self.spec.optimizer
        while True:
            if self.batch is ASYNCHRONOUS:
                while executor.free and self.budget_left() and (proposals := _ask(self.optimizer, name, 1)):
                    self.launch(proposals[0])
            elif not executor.pending and self.budget_left():
                for trial in _ask(self.optimizer, name, self.batch):
                    if self.budget_left():
                        self.launch(trial)
            if not executor.pending:
                break
            finished = executor.wait()
            while self.batch is not ASYNCHRONOUS and executor.pending:
                finished += executor.wait()
            groups = ([[st] for st in finished] if self.batch is ASYNCHRONOUS
                      else [sorted(finished, key=lambda st: st.number)])
            for group in groups:
                for st in group:
                    self.count(st)
                _tell(self.optimizer, name, group)
                self.told += len(group)
                if progress:
                    progress(self.told, min(self.used, self.spec.budget))
        if unproposed := sorted(n for n in self.stored if n >= self.number):
            raise ResumeMismatch(f"cannot resume run {self.run_id}: the optimizer stopped after {self.number} trials,"
                                 f" the store holds trial {unproposed[-1]}; it is not deterministic, start a new run"
                                 " without --resume")


class OptimizerError(RuntimeError):
    """An optimizer broke its contract or raised inside ask/tell: a bug in that optimizer, named."""


def _ask(optimizer, name: str, n: int) -> list[Trial]:
    """``optimizer.ask(n)``, refused with the optimizer named when it breaks the contract (an empty
    list ends the run; None or anything else is a bug, not the end)."""
    try:
        proposals = optimizer.ask(n)
    except Exception as exc:
        raise OptimizerError(f"optimizer {name}: ask({n}) raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(proposals, list) or not all(isinstance(t, Trial) for t in proposals):
        raise OptimizerError(f"optimizer {name}: ask({n}) returned {type(proposals).__name__}, not a list of Trial")
    return proposals


def _tell(optimizer, name: str, group: list[StoredTrial]) -> None:
    try:
        optimizer.tell([st.trial for st in group], [st.result for st in group])
    except Exception as exc:
        raise OptimizerError(f"optimizer {name}: tell() of trial(s) {[st.number for st in group]} raised"
                             f" {type(exc).__name__}: {exc}") from exc
