"""SMAC3 (2.x) behind the ask/tell contract.

SMAC reads ConfigSpace natively, so a copy of the space goes in as it is and a SMAC
``Configuration`` comes back as a dict of its active values. SMAC's files go to a temporary
folder removed with the optimizer.

Failures: SMAC's ``crash_cost`` only applies when SMAC runs the target itself; through
``tell`` the cost of a CRASHED trial is taken as given and trains the model. So a failure is
told with the worst loss seen so far (``Optimizer.losses``). A failure before any success is
held back (SMAC sees it as still running) until a success prices it: the placeholder 1e10
would otherwise dominate the GP's normalised targets for the rest of the run.
"""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path

import numpy as np
from smac import BlackBoxFacade, HyperparameterOptimizationFacade, MultiFidelityFacade, Scenario
from smac.acquisition.maximizer.local_search import LocalSearch
from smac.initial_design import LatinHypercubeInitialDesign
from smac.intensifier.hyperband_utils import get_n_trials_for_hyperband_multifidelity
from smac.main.exceptions import ConfigurationSpaceExhaustedException
from smac.runhistory.dataclasses import TrialValue
from smac.runhistory.enumerations import StatusType
from threadpoolctl import threadpool_limits

from bench.optimizer import Optimizer
from bench.space import native
from bench.trial import Result, Trial

DEFAULT_BUDGET = 100  # full-fidelity evaluations assumed when the runner does not say
INITIAL_LHS = 10  # smac-gp: the LoRA HPO seed's Latin hypercube initial design
ETA = 3
# SMAC fits its models inside ask() on matrices of a few hundred rows at most, where threaded BLAS
# only adds overhead: one thread made a smac-gp suggestion 5x faster on a loaded 2-core machine.
BLAS_THREADS = 1


def _leaves_at_most_rows(model) -> None:
    """SMAC's forest caps a tree at 2**20 leaves, and scikit-learn's best-first builder allocates room for them all
    at every fit (about 0.2 s and 150 MB a tree, most of a smac-rf run). A tree has at most one leaf per training
    row, so capping it there builds the same trees, in the same order, from the same random numbers."""
    train = model._train

    def capped(x, y):
        model._rf_opts["max_leaf_nodes"] = max(2, len(x))
        return train(x, y)

    model._train = capped


def _never_called(config, seed: int = 0, budget: float | None = None) -> float:
    raise RuntimeError("SMAC is driven by ask/tell here; it never calls the target function")


class OrderedLocalSearch(LocalSearch):
    """SMAC's local search starts from ``list(set(points))``: that order, and so the random numbers
    each start point draws, follows string hashing, which changes between processes
    (PYTHONHASHSEED), so a resumed or repeated run would propose other trials. Sorting the start
    points by their vector makes the order depend on the points alone."""

    def _get_initial_points(self, *args, **kwargs):
        points = super()._get_initial_points(*args, **kwargs)
        return sorted(points, key=lambda c: tuple(np.nan_to_num(c.get_array(), nan=-1.0)))


class SMACOptimizer(Optimizer):
    def __init__(self, *args, facade: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-smac-")
        budget = self.budget or DEFAULT_BUDGET
        # The runner ends the run; SMAC's n_trials only sizes its initial design (at most a quarter of it).
        n_trials = max(math.ceil(budget), 1)
        budgets, extra = {}, {}
        if facade == "smac-gp":
            Facade = BlackBoxFacade
            n_trials = max(n_trials, INITIAL_LHS)
        elif facade == "smac-rf":
            Facade = HyperparameterOptimizationFacade
        elif facade == "smac-hyperband":
            Facade = MultiFidelityFacade
            low, high = self.fidelity.min, self.fidelity.max
            budgets = {"min_budget": low, "max_budget": high}
            # SMAC's own conversion of a total budget in fidelity units to Hyperband trials
            n_trials = max(get_n_trials_for_hyperband_multifidelity(budget * high, low, high, eta=ETA,
                                                                    print_summary=False), 1)
        else:
            raise ValueError(f"unknown SMAC facade {facade!r}")
        scenario = Scenario(copy.deepcopy(self.space), deterministic=True, seed=self.seed, n_trials=n_trials,
                            output_directory=Path(self._tmp.name), **budgets)
        if facade == "smac-gp":
            extra["initial_design"] = LatinHypercubeInitialDesign(scenario, n_configs=INITIAL_LHS, max_ratio=1.0,
                                                                  additional_configs=[])
        elif facade == "smac-hyperband":
            extra["intensifier"] = MultiFidelityFacade.get_intensifier(scenario, eta=ETA)
        if facade != "smac-gp":
            model = Facade.get_model(scenario)
            # SMAC's forest predicts with n_jobs=-1 (a thread pool per predict, thousands per local search):
            # one job gave the same trials 2-3x faster, and parallel runs share the cores. get_model has no
            # n_jobs argument, so it is set on the forest's options before the forest is built.
            model._rf_opts["n_jobs"] = 1
            _leaves_at_most_rows(model)
            extra["model"] = model
        maximizer = Facade.get_acquisition_maximizer(scenario)
        maximizer._local_search.__class__ = OrderedLocalSearch  # same state, ordered start points
        self._smac = Facade(scenario, _never_called, acquisition_maximizer=maximizer, overwrite=True,
                            logging_level=40, **extra)
        self._multi_fidelity = bool(budgets)
        self._infos: dict[Trial, object] = {}
        self._held: list[tuple[Trial, Result]] = []  # told results not yet passed to SMAC

    def ask(self, n: int = 1) -> list[Trial]:
        trials = []
        for _ in range(n):
            try:
                with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
                    info = self._smac.ask()
            except (ConfigurationSpaceExhaustedException, StopIteration):
                break  # a small discrete space is used up: nothing new to propose
            fidelity = None
            if self._multi_fidelity:
                fidelity = round(info.budget) if self.fidelity.integer else float(info.budget)
            trial = Trial({k: native(v) for k, v in info.config.items()}, fidelity)
            self._infos[trial] = info
            trials.append(trial)
        return trials

    def tell(self, trials, results) -> None:
        super().tell(trials, results)
        self._held.extend(zip(trials, results))
        if any(r.ok for _, r in self.history):  # until then, every told trial is a failure with no price
            held, self._held = self._held, []
            for trial, result in held:
                self._tell(trial, result)

    def _tell(self, trial: Trial, result: Result) -> None:
        status = StatusType.SUCCESS if result.ok else StatusType.CRASHED
        value = TrialValue(cost=float(self.losses(result)[0]), time=result.cost, status=status)
        self._smac.tell(self._infos.pop(trial), value, save=False)
