"""pymoo behind the ask/tell contract, in the unit cube of the space.

Each individual is a point of [0, 1]^d mapped by ``bench.space.from_unit`` (log scales,
integers, categoricals and conditions as every sampler in the suite sees them). A generation
is handed out as asked and told back to pymoo once every individual has a result; failed
individuals get the worst value seen per objective (``Optimizer.losses``), so they lose
every comparison without breaking pymoo's arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
from pymoo.core.evaluator import Evaluator
from pymoo.core.individual import Individual
from pymoo.core.population import Population
from pymoo.core.problem import Problem as PymooProblem
from pymoo.core.termination import NoTermination
from pymoo.problems.static import StaticProblem
from pymoo.util.ref_dirs import get_reference_directions

from bench.optimizer import Optimizer
from bench.space import from_unit
from bench.trial import Trial


def make_algorithm(name: str, pop_size: int, n_obj: int):
    if name == "nsga2":
        from pymoo.algorithms.moo.nsga2 import NSGA2

        return NSGA2(pop_size=pop_size)
    if name == "smsemoa":
        from pymoo.algorithms.moo.sms import SMSEMOA

        return SMSEMOA(pop_size=pop_size)
    ref_dirs = get_reference_directions("energy", n_obj, pop_size, seed=1)
    if name == "nsga3":
        from pymoo.algorithms.moo.nsga3 import NSGA3

        return NSGA3(ref_dirs=ref_dirs, pop_size=pop_size)
    if name == "moead":
        from pymoo.algorithms.moo.moead import MOEAD

        return MOEAD(ref_dirs=ref_dirs, n_neighbors=min(15, pop_size - 1))
    raise ValueError(f"unknown pymoo algorithm {name!r}")


class PymooOptimizer(Optimizer):
    def __init__(self, *args, algorithm: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        pop_size = int(min(20, max(4, (self.budget or 60) // 3)))
        self._problem = PymooProblem(n_var=len(self.space), n_obj=len(self.objectives), xl=0.0, xu=1.0)
        self._algorithm = make_algorithm(algorithm, pop_size, len(self.objectives))
        self._algorithm.setup(self._problem, termination=NoTermination(), seed=self.seed, verbose=False)
        self._generation = None
        self._next = 0
        self._values: np.ndarray | None = None
        self._rows: dict[Trial, int] = {}

    def ask(self, n: int = 1) -> list[Trial]:
        if self._generation is None:
            self._infills = self._algorithm.ask()  # a Population, or one Individual (MOEA/D is steady-state)
            self._generation = Population.create(self._infills) if isinstance(self._infills, Individual) \
                else self._infills
            self._next = 0
            self._values = np.full((len(self._generation), len(self.objectives)), math.nan)
        trials = []
        while len(trials) < n and self._next < len(self._generation):
            trial = Trial(from_unit(self.space, self._generation[self._next].X))
            self._rows[trial] = self._next
            self._next += 1
            trials.append(trial)
        return trials

    def tell(self, trials, results) -> None:
        super().tell(trials, results)
        for trial, result in zip(trials, results):
            self._values[self._rows.pop(trial)] = self.losses(result)
        if self._next == len(self._generation) and not np.isnan(self._values).any():
            Evaluator().eval(StaticProblem(self._problem, F=self._values), self._generation)
            self._algorithm.tell(infills=self._infills)
            self._generation = None
