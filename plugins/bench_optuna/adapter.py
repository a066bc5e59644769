"""Optuna samplers behind the ask/tell contract, on an in-memory study.

A trial is asked of the study and its hyperparameters suggested define-by-run, in the space's
order (parents before children), each as its ConfigSpace type says (floats and integers keep
their log scale; categoricals and ordinals are categorical); one a condition switches off is
never suggested, which is how TPE searches a conditional space.
Constants are not searched. A failed or diverged trial is told as FAIL, as Optuna expects;
Optuna's samplers then leave it out of their models. Several asks before a tell leave trials
RUNNING, which the samplers account for (GPSampler as pending points), so batches and
asynchronous workers are fine. With a seeded sampler the study is a function of its history,
so the same seed gives the same trials in any process and a resumed run replays exactly.
"""

from __future__ import annotations

import contextlib
import warnings

import optuna
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    Constant,
    FloatHyperparameter,
    IntegerHyperparameter,
    OrdinalHyperparameter,
)
from optuna.trial import TrialState

from bench.optimizer import Optimizer
from bench.space import native, validate
from bench.trial import Result, Trial

optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per told trial otherwise


def make_sampler(name: str, seed: int, deterministic: bool) -> optuna.samplers.BaseSampler:
    """Optuna's sampler with its defaults and ``seed``; GPSampler also learns whether the problem is noisy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, deterministic_objective=deterministic)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        if name == "nsga3":
            return optuna.samplers.NSGAIIISampler(seed=seed)
    raise ValueError(f"unknown Optuna sampler {name!r}; one of tpe, gp, cmaes, nsga2, nsga3")


def _suggest(trial: optuna.Trial, hp):
    """One hyperparameter's value, suggested with its ConfigSpace type and scale (constants are not searched)."""
    if isinstance(hp, Constant):
        return native(hp.value)
    if isinstance(hp, CategoricalHyperparameter):
        return native(trial.suggest_categorical(hp.name, [native(c) for c in hp.choices]))
    if isinstance(hp, OrdinalHyperparameter):
        return native(trial.suggest_categorical(hp.name, [native(c) for c in hp.sequence]))
    if isinstance(hp, IntegerHyperparameter):
        return trial.suggest_int(hp.name, int(hp.lower), int(hp.upper), log=hp.log)
    if isinstance(hp, FloatHyperparameter):
        return trial.suggest_float(hp.name, float(hp.lower), float(hp.upper), log=hp.log)
    raise TypeError(f"Optuna adapter: unsupported hyperparameter type {type(hp).__name__}")


def _active(space, name: str, config: dict) -> bool:
    """Whether the conditions on ``name`` hold for the values chosen so far (its parents come first)."""
    try:
        return all(condition.satisfied_by_value(config) for condition in space.parent_conditions_of[name])
    except KeyError:  # a parent is inactive itself
        return False


def suggest(space, trial: optuna.Trial) -> dict:
    """A configuration suggested define-by-run: the space's order, inactive hyperparameters skipped; in
    ConfigSpace's own form (floats to its precision), as every configuration of the suite."""
    config = {}
    for hp in space.values():
        if _active(space, hp.name, config):
            config[hp.name] = _suggest(trial, hp)
    return validate(space, config)


class OptunaOptimizer(Optimizer):
    def __init__(self, *args, sampler: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        directions = ["minimize" if o.direction == "min" else "maximize" for o in self.objectives]
        self.study = optuna.create_study(sampler=make_sampler(sampler, self.seed, self.deterministic),
                                         directions=directions)
        self._running: dict[Trial, optuna.Trial] = {}
        self._threads = contextlib.nullcontext
        if sampler == "gp":
            from bench_botorch.gp import one_thread

            self._threads = one_thread

    def ask(self, n: int = 1) -> list[Trial]:
        trials = []
        for _ in range(n):
            with self._threads():
                study_trial = self.study.ask()
                trial = Trial(suggest(self.space, study_trial))
            self._running[trial] = study_trial
            trials.append(trial)
        return trials

    def tell(self, trials, results: list[Result]) -> None:
        super().tell(trials, results)
        for trial, result in zip(trials, results):
            study_trial = self._running.pop(trial)
            if result.ok:
                self.study.tell(study_trial, [result.objectives[o.name] for o in self.objectives])
            else:
                self.study.tell(study_trial, state=TrialState.FAIL)
