"""The Optimizer contract: ``ask(n)``, ``tell(trials, results)``, ``incumbent()``.

The runner owns the loop, budgets and failures; an optimizer only proposes and learns.
Failed trials are told too (with their status), so an optimizer can avoid a region
that crashes or diverges.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from ConfigSpace import ConfigurationSpace

from bench.hookspecs import Capabilities
from bench.problem import Objective, Problem
from bench.space import Fidelity
from bench.trial import Result, Trial


FAILED_WITHOUT_HISTORY = 1e10  # the loss of a failure before any success: large, but finite for models


class Unsupported(ValueError):
    """The optimizer cannot handle this problem (objective count, fidelity, space)."""


def check_supported(name: str, capabilities: Capabilities, problem: Problem, objectives: Sequence[Objective]) -> None:
    """Refuse an optimizer/problem pair before anything runs, saying why."""
    multi = len(objectives) > 1
    if multi and not capabilities.multi_objective:
        raise Unsupported(f"optimizer {name} is single-objective; this run has {len(objectives)} objectives"
                          " (choose one with --objective)")
    if not multi and not capabilities.single_objective:
        raise Unsupported(f"optimizer {name} is multi-objective only; this problem has one objective")
    if capabilities.genotype and (problem.space.meta or {}).get("genotype") != capabilities.genotype:
        raise Unsupported(f"optimizer {name} searches only {capabilities.genotype} genotypes; choose a "
                          f"{capabilities.genotype} problem or a general optimizer")
    hps = list(problem.space.values())
    if problem.space.conditions and not capabilities.conditional:
        raise Unsupported(f"optimizer {name} cannot search conditional spaces; choose one whose capabilities"
                          " say conditional (bench list optimizers --json)")
    if not capabilities.categorical and any(type(hp).__name__ == "CategoricalHyperparameter" for hp in hps):
        raise Unsupported(f"optimizer {name} cannot search categorical hyperparameters; choose one whose"
                          " capabilities say categorical (bench list optimizers --json)")
    if capabilities.multi_fidelity and problem.fidelity is None:
        raise Unsupported(f"optimizer {name} is multi-fidelity; this problem has no fidelity")


class Optimizer(ABC):
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(
        self,
        space: ConfigurationSpace,
        objectives: Sequence[Objective],
        *,
        fidelity: Fidelity | None = None,
        seed: int = 0,
        budget: float | None = None,
        deterministic: bool = True,
    ) -> None:
        self.space = space
        self.objectives = tuple(objectives)
        self.fidelity = fidelity
        self.seed = seed
        self.budget = budget  # in full-fidelity evaluations, when the runner knows it
        self.deterministic = deterministic  # the problem's: a noise-aware model may treat repeats as noise
        self.rng = np.random.default_rng(seed)
        self.history: list[tuple[Trial, Result]] = []

    @abstractmethod
    def ask(self, n: int = 1) -> list[Trial]:
        """Up to ``n`` new trials; fewer (or none) when the optimizer has nothing left to propose."""

    def tell(self, trials: Sequence[Trial], results: Sequence[Result]) -> None:
        self.history.extend(zip(trials, results, strict=True))

    def losses(self, result: Result) -> np.ndarray:
        """The objectives as values to minimise. A failed or diverged trial gets the worst loss of
        each objective seen so far, so it ranks last and keeps a model's data finite."""
        if result.ok:
            return np.array([o.sign * result.objectives[o.name] for o in self.objectives], dtype=float)
        seen = [self.losses(r) for _, r in self.history if r.ok]
        return np.max(seen, axis=0) if seen else np.full(len(self.objectives), FAILED_WITHOUT_HISTORY)

    def incumbent(self) -> list[tuple[Trial, Result]]:
        """The best trial (one objective) or the non-dominated trials (several), among ok results
        at the highest fidelity evaluated so far (lower fidelities are only estimates)."""
        done = [(t, r) for t, r in self.history if r.ok]
        if not done:
            return []
        levels = [math.inf if t.fidelity is None else t.fidelity for t, _ in done]  # None: full fidelity
        done = [tr for tr, level in zip(done, levels) if level == max(levels)]
        signs = np.array([o.sign for o in self.objectives])
        values = np.array([[r.objectives[o.name] for o in self.objectives] for _, r in done]) * signs
        if len(self.objectives) == 1:
            return [done[int(np.argmin(values[:, 0]))]]
        return [done[i] for i in np.flatnonzero(non_dominated(values))]


def non_dominated(values: np.ndarray) -> np.ndarray:
    """Mask of the rows of a (n, m) array of minimised objectives that no other row dominates."""
    keep = np.ones(len(values), dtype=bool)
    for i, row in enumerate(values):
        dominated_by = np.all(values <= row, axis=1) & np.any(values < row, axis=1)
        keep[i] = not dominated_by.any()
    return keep
