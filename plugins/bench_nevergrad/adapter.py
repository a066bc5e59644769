"""nevergrad behind the ask/tell contract. A space of numbers only is one array of the unit cube, mapped
to configurations by ``bench.space.from_unit``; any other space a native nevergrad parametrization:
log floats become ``ng.p.Log``, floats ``ng.p.Scalar``, integers integer-cast scalars (on a
log scale where the space says so), categoricals ``ng.p.Choice``, ordinals
``ng.p.TransitionChoice``, constants stay fixed. Conditions: nevergrad searches every
hyperparameter and the inactive ones are dropped from the configuration. Failed trials are
told the worst loss seen so far (``Optimizer.losses``).

nevergrad is created with ``num_workers=1``: the runner asks one trial at a time and an optimizer
cannot know how many workers a run has, and NGOpt chooses best for sequential runs that way
(Cobyla at small budgets: regret 0.15 on branin at 40 evaluations against 0.35 with two workers).
Several pending candidates are fine for CMA, DE, PSO and (1+1); an optimizer that runs one
candidate at a time gets no second ask before the first is told.
"""

from __future__ import annotations

import builtins
import math
import warnings

import nevergrad as ng
import nevergrad.optimization.metamodel as ng_metamodel
import numpy as np
from ConfigSpace import ConfigurationSpace
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    Constant,
    FloatHyperparameter,
    IntegerHyperparameter,
    OrdinalHyperparameter,
)
from ConfigSpace.util import deactivate_inactive_hyperparameters

from bench.optimizer import Optimizer
from bench.space import from_unit, native
from bench.trial import Trial


def _scalar(x) -> float:
    """``float`` as NumPy < 2.4 had it: a one-element array gives its element."""
    return builtins.float(np.asarray(x).item()) if np.ndim(x) else builtins.float(x)


# nevergrad 1.0.12's metamodel calls float() on one-element predictions, a TypeError since NumPy 2.4
# (nevergrad issue #1612); NGOpt picks MetaModel (branin at budget 200, any run with several workers)
# and crashed there. Shadowing float in that module alone restores the conversion it was written for.
ng_metamodel.float = _scalar

# pycma adds a sample along the mean's last shift to each population and warns when it comes back told as a
# slightly different array: nevergrad's bounds on the unit-cube array round it on the way, so the sample is told as
# an ordinary one. Once a population, on every cma run: noise, not news.
warnings.filterwarnings("ignore", message="orphanated injected solution")


def to_nevergrad(space: ConfigurationSpace) -> ng.p.Dict:
    params = {}
    for hp in space.values():
        if isinstance(hp, Constant):
            params[hp.name] = hp.value
        elif isinstance(hp, CategoricalHyperparameter):
            params[hp.name] = ng.p.Choice([native(c) for c in hp.choices])
        elif isinstance(hp, OrdinalHyperparameter):
            params[hp.name] = ng.p.TransitionChoice([native(c) for c in hp.sequence])
        elif isinstance(hp, IntegerHyperparameter):
            scalar = ng.p.Log(lower=hp.lower, upper=hp.upper) if hp.log else ng.p.Scalar(lower=hp.lower, upper=hp.upper)
            params[hp.name] = scalar.set_integer_casting()
        elif isinstance(hp, FloatHyperparameter):
            params[hp.name] = (ng.p.Log if hp.log else ng.p.Scalar)(lower=hp.lower, upper=hp.upper)
        else:
            raise TypeError(f"nevergrad adapter: unsupported hyperparameter type {type(hp).__name__}")
    return ng.p.Dict(**params)


def from_nevergrad(space: ConfigurationSpace, value: dict) -> dict:
    """A nevergrad value as a valid configuration: clipped to the bounds (a log/exp round trip
    can step one ulp outside), typed, inactive hyperparameters dropped."""
    config = {}
    for hp in space.values():
        v = native(value[hp.name])
        if isinstance(hp, IntegerHyperparameter):
            v = int(min(max(int(v), hp.lower), hp.upper))
        elif isinstance(hp, FloatHyperparameter):
            v = float(min(max(float(v), hp.lower), hp.upper))
        config[hp.name] = v
    if space.conditions:
        config = {k: native(v) for k, v in deactivate_inactive_hyperparameters(config, space).items()}
    return config


def _sequential(optimizer) -> bool:
    """Whether the optimizer or one it delegates to (NGOpt's choice, a metamodel's base, a chain's
    stages, a portfolio's members) runs one candidate at a time, as the scipy recasts (Cobyla) do:
    their ask() waits for the previous tell, forever if asked twice."""
    if optimizer.no_parallelization:
        return True
    inner = [optimizer.optim] if isinstance(getattr(type(optimizer), "optim", None), property) else []
    inner += [getattr(optimizer, name, None) for name in ("_optim", "_optimizer")]
    for name in ("optimizers", "optims"):
        inner += list(getattr(optimizer, name, []))
    return any(_sequential(o) for o in inner if isinstance(o, ng.optimizers.base.Optimizer))


def numbers_only(space: ConfigurationSpace) -> bool:
    """Whether every hyperparameter is a float or an integer and none is conditional."""
    return not space.conditions and all(isinstance(hp, (FloatHyperparameter, IntegerHyperparameter))
                                        for hp in space.values())


class NevergradOptimizer(Optimizer):
    def __init__(self, *args, method: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A space of numbers is searched as one array of the unit cube, mapped as every sampler maps it
        # (``from_unit``: log scales, integer cells): nevergrad copies a Dict's every child at each ask and
        # tell, a suggestion's main cost (cma on the LoRA space 7 ms a suggestion as a Dict, 1.5 ms so).
        self._cube = numbers_only(self.space)
        self.parametrization = (ng.p.Array(shape=(len(self.space),), lower=0.0, upper=1.0) if self._cube
                                else to_nevergrad(self.space))
        self.parametrization.random_state = np.random.RandomState(self.seed)
        budget = max(int(math.ceil(self.budget or 100)), 1)
        self._ng = ng.optimizers.registry[method](parametrization=self.parametrization, budget=budget, num_workers=1)
        self._candidates: dict[Trial, object] = {}
        self._sequential = _sequential(self._ng)

    def ask(self, n: int = 1) -> list[Trial]:
        trials = []
        for _ in range(n):
            if self._candidates and self._sequential:
                break  # its ask() would block until the pending candidate is told: the runner waits instead
            candidate = self._ng.ask()
            trial = Trial(from_unit(self.space, candidate.value) if self._cube else
                          from_nevergrad(self.space, candidate.value))
            self._candidates[trial] = candidate
            trials.append(trial)
        return trials

    def tell(self, trials, results) -> None:
        super().tell(trials, results)
        for trial, result in zip(trials, results):
            self._ng.tell(self._candidates.pop(trial), float(self.losses(result)[0]))
