"""SMAC3 behind the ask/tell contract. SMAC reads ConfigSpace natively, so the space goes in as
it is; SMAC's own files go to a temporary folder removed with the optimizer. Failed trials
are told as crashed, with the worst cost seen so far, so the models stay finite."""

from __future__ import annotations

import copy
import math
import tempfile

from bench.optimizer import Optimizer
from bench.space import native
from bench.trial import Trial


def _ignore(config, seed: int = 0, budget: float | None = None) -> float:
    raise RuntimeError("SMAC is driven by ask/tell here; it never calls the target function")


class SMACOptimizer(Optimizer):
    def __init__(self, *args, facade: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from smac import BlackBoxFacade, HyperparameterOptimizationFacade, MultiFidelityFacade, Scenario

        self._tmp = tempfile.TemporaryDirectory(prefix="bench-smac-")
        budget = max(int(math.ceil(self.budget or 100)), 1)
        fidelity = {}
        if facade == "smac-hyperband":
            fidelity = {"min_budget": self.fidelity.min, "max_budget": self.fidelity.max}
            budget *= 30  # Hyperband spends many cheap trials per full-fidelity evaluation
        scenario = Scenario(copy.deepcopy(self.space), deterministic=True, seed=self.seed, n_trials=budget,
                            output_directory=self._tmp.name, **fidelity)
        if facade == "bo-gp":
            design = BlackBoxFacade.get_initial_design(scenario, n_configs=10)
            self._smac = BlackBoxFacade(scenario, _ignore, initial_design=design, overwrite=True, logging_level=40)
        elif facade == "smac-rf":
            self._smac = HyperparameterOptimizationFacade(scenario, _ignore, overwrite=True, logging_level=40)
        else:
            intensifier = MultiFidelityFacade.get_intensifier(scenario, eta=3)
            self._smac = MultiFidelityFacade(scenario, _ignore, intensifier=intensifier, overwrite=True,
                                             logging_level=40)
        self._infos: dict[Trial, object] = {}

    def ask(self, n: int = 1) -> list[Trial]:
        trials = []
        for _ in range(n):
            info = self._smac.ask()
            fidelity = None
            if info.budget is not None:
                fidelity = round(info.budget) if self.fidelity.integer else float(info.budget)
            trial = Trial({k: native(v) for k, v in dict(info.config).items()}, fidelity)
            self._infos[trial] = info
            trials.append(trial)
        return trials

    def tell(self, trials, results) -> None:
        from smac.runhistory.dataclasses import TrialValue
        from smac.runhistory.enumerations import StatusType

        super().tell(trials, results)
        for trial, result in zip(trials, results):
            status = StatusType.SUCCESS if result.ok else StatusType.CRASHED
            value = TrialValue(cost=float(self.losses(result)[0]), time=result.cost, status=status)
            self._smac.tell(self._infos.pop(trial), value, save=False)
