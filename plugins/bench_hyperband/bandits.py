"""Hyperband (Li et al., 2018) and ASHA (Li et al., 2020) on random configurations.

Rung fidelities are ``max * eta**-k`` (rounded for integer fidelities, never below the
minimum); a configuration promoted to a higher rung is evaluated again at that fidelity.
eta is 3, or the fidelity's whole range (max / min) where that is narrower, so a fidelity of
two close levels (NAS: the phase-0 cutoff and the end of phase 1) still has a rung to stop at.
Failed or diverged trials rank last.
"""

from __future__ import annotations

import math

from bench.optimizer import Optimizer
from bench.space import from_unit
from bench.trial import Trial

ETA = 3


class _Rungs(Optimizer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        ratio = self.fidelity.max / self.fidelity.min
        self.eta = ETA if ratio >= ETA or ratio <= 1 else ratio
        self.top_rung = int(math.floor(math.log(ratio, self.eta) + 1e-9))
        self._sign = self.objectives[0].sign

    def rung_fidelity(self, rung: int) -> float:
        value = self.fidelity.max * self.eta ** (rung - self.top_rung)
        value = round(value) if self.fidelity.integer else value
        return max(value, self.fidelity.min)

    def _loss(self, result) -> float:
        return self._sign * result.objectives[self.objectives[0].name] if result.ok else math.inf

    def _sample(self) -> dict:
        return from_unit(self.space, self.rng.random(len(self.space)))


class Hyperband(_Rungs):
    """Brackets s = s_max .. 0; each runs synchronous successive halving and waits at every rung."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._bracket = self.top_rung + 1  # the next one to start is bracket - 1
        self._queue: list[Trial] = []
        self._waiting: dict[Trial, float | None] = {}
        self._rung = 0

    def _start_bracket(self) -> None:
        self._bracket = (self._bracket - 1) % (self.top_rung + 1)
        s = self._bracket
        n = math.ceil((self.top_rung + 1) / (s + 1) * self.eta**s)
        self._rung = self.top_rung - s
        self._launch([self._sample() for _ in range(n)])

    def _launch(self, configs: list[dict]) -> None:
        fidelity = self.rung_fidelity(self._rung)
        self._queue = [Trial(c, fidelity, {"bracket": self._bracket, "rung": self._rung}) for c in configs]
        self._waiting = {t: None for t in self._queue}

    def ask(self, n: int = 1) -> list[Trial]:
        if not self._waiting:
            self._start_bracket()
        trials, self._queue = self._queue[:n], self._queue[n:]
        return trials

    def tell(self, trials, results) -> None:
        super().tell(trials, results)
        for trial, result in zip(trials, results):
            if trial in self._waiting:
                self._waiting[trial] = self._loss(result)
        if self._waiting and not self._queue and all(v is not None for v in self._waiting.values()):
            ranked = sorted(self._waiting, key=lambda t: self._waiting[t])
            survivors = [t.config for t in ranked[: int(len(ranked) // self.eta)]
                         if self._waiting[t] < math.inf]
            if self._rung < self.top_rung and survivors:
                self._rung += 1
                self._launch(survivors)
            else:
                self._waiting = {}


class ASHA(_Rungs):
    """A free worker promotes a configuration in the top 1/eta of its rung, else starts a new one."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._rungs: list[list[tuple[float, int]]] = [[] for _ in range(self.top_rung + 1)]  # (loss, config id)
        self._promoted: list[set[int]] = [set() for _ in range(self.top_rung + 1)]
        self._configs: list[dict] = []
        self._id: dict[Trial, int] = {}

    def _next(self) -> Trial:
        for rung in range(self.top_rung - 1, -1, -1):
            done = sorted(self._rungs[rung])
            for loss, config_id in done[: int(len(done) // self.eta)]:
                if config_id not in self._promoted[rung] and loss < math.inf:
                    self._promoted[rung].add(config_id)
                    return self._trial(config_id, rung + 1)
        self._configs.append(self._sample())
        return self._trial(len(self._configs) - 1, 0)

    def _trial(self, config_id: int, rung: int) -> Trial:
        trial = Trial(self._configs[config_id], self.rung_fidelity(rung), {"rung": rung})
        self._id[trial] = config_id
        return trial

    def ask(self, n: int = 1) -> list[Trial]:
        return [self._next() for _ in range(n)]

    def tell(self, trials, results) -> None:
        super().tell(trials, results)
        for trial, result in zip(trials, results):
            self._rungs[trial.info["rung"]].append((self._loss(result), self._id.pop(trial)))
