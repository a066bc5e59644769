"""Samplers: proposals that do not depend on results, drawn through the space's unit cube."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import qmc

from bench.optimizer import Optimizer
from bench.space import distinct_values, from_unit
from bench.trial import Trial


class _UnitSampler(Optimizer):
    """Proposes configurations from points of [0, 1]^d, one batch of points at a time."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._points: list[np.ndarray] = []

    def _next_points(self) -> np.ndarray:
        raise NotImplementedError

    def ask(self, n: int = 1) -> list[Trial]:
        trials = []
        while len(trials) < n:
            if not self._points:
                self._points = list(self._next_points())
                if not self._points:
                    break
            trials.append(Trial(from_unit(self.space, self._points.pop(0))))
        return trials


class RandomSearch(_UnitSampler):
    def _next_points(self) -> np.ndarray:
        return self.rng.random((1, len(self.space)))


class LatinHypercube(_UnitSampler):
    """One Latin hypercube design of ``budget`` points; a fresh design if asked for more."""

    def _next_points(self) -> np.ndarray:
        size = max(int(math.ceil(self.budget or 1)), 1)
        return qmc.LatinHypercube(d=len(self.space), rng=self.rng).random(size)


class GridSearch(Optimizer):
    """The cell centres of a regular grid with enough points per dimension to fill the budget.

    Visited in a seeded random order, so a budget smaller than the grid still spreads out;
    one pass, then the grid is exhausted. Categoricals and small integer ranges contribute
    each of their values once.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        budget = max(int(math.ceil(self.budget or 1)), 1)
        hps = list(self.space.values())
        steps = max(2, math.ceil(budget ** (1 / len(hps))))
        self._shape = tuple(min(steps, distinct_values(hp)) for hp in hps)
        total = math.prod(self._shape)
        # Enough grid indices for the budget; the order is random but fixed by the seed.
        self._order = iter(self.rng.choice(total, size=min(total, budget), replace=False) if total > budget
                           else self.rng.permutation(total))
        self._seen: set[str] = set()

    def ask(self, n: int = 1) -> list[Trial]:
        trials = []
        for index in self._order:
            cell = np.unravel_index(index, self._shape)
            config = from_unit(self.space, (np.array(cell) + 0.5) / np.array(self._shape))
            key = repr(sorted(config.items()))
            if key not in self._seen:  # conditions can fold distinct cells onto one configuration
                self._seen.add(key)
                trials.append(Trial(config))
                if len(trials) == n:
                    break
        return trials
