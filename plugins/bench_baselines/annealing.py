"""Simulated annealing in the unit cube of the space: a metaheuristic baseline of the LoRA HPO seed."""

from __future__ import annotations

import math

import numpy as np

from bench.optimizer import Optimizer
from bench.space import from_unit
from bench.trial import Trial

T_START, T_END = 1.0, 0.01  # temperatures in units of the spread of losses seen so far
STEP_START, STEP_END = 0.25, 0.02  # neighbour standard deviation in the unit cube


class SimulatedAnnealing(Optimizer):
    """Gaussian neighbours of the current point; Metropolis acceptance with a temperature and a
    step size that decay geometrically over the budget. Losses are scaled by their spread so one
    schedule fits every objective; a failed trial is never accepted."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._budget = max(int(math.ceil(self.budget or 100)), 2)
        self._current: np.ndarray | None = None
        self._current_loss = math.inf
        self._losses: list[float] = []
        self._points: dict[Trial, np.ndarray] = {}
        self._objective = self.objectives[0]

    def _progress(self) -> float:
        return min(len(self.history) / (self._budget - 1), 1.0)

    def ask(self, n: int = 1) -> list[Trial]:
        trials = []
        step = STEP_START * (STEP_END / STEP_START) ** self._progress()
        for _ in range(n):
            if self._current is None:
                point = self.rng.random(len(self.space))
            else:
                point = np.clip(self._current + self.rng.normal(0.0, step, len(self.space)), 0.0, 1.0)
            trial = Trial(from_unit(self.space, point))
            self._points[trial] = point
            trials.append(trial)
        return trials

    def tell(self, trials, results) -> None:
        super().tell(trials, results)
        temperature = T_START * (T_END / T_START) ** self._progress()
        for trial, result in zip(trials, results):
            point = self._points.pop(trial)
            if not result.ok:
                continue
            loss = self._objective.sign * result.objectives[self._objective.name]
            self._losses.append(loss)
            spread = (max(self._losses) - min(self._losses)) or 1.0
            delta = (loss - self._current_loss) / spread
            if delta <= 0 or self.rng.random() < math.exp(-delta / temperature):
                self._current, self._current_loss = point, loss
