"""``nsga2-nas``: the source's search (docs/methods.md section 2), mutation only.

The initial population is ``mu`` strong mutations of the parent (the space's default
configuration). Each next generation: ``lambda`` offspring, each a mutation of a parent chosen
by tournament (k = 3) on Pareto rank, ties broken by the crowding distance on the size axis
only (``params``, else every axis); then plus-selection keeps the best ``mu`` of parents and
offspring by rank and the same crowding distance. A generation is handed out as asked and
selection waits until all of it is told (``ask`` returns nothing in between). Failed and
diverged candidates take the worst values seen (``Optimizer.losses``), so they rank last.
The source's cutoff between the pre-training phases is a fidelity decision left to
multi-fidelity optimizers; this search evaluates every candidate at full fidelity.
"""

from __future__ import annotations

import numpy as np

from bench.optimizer import Optimizer, non_dominated
from bench.space import validate
from bench.trial import Trial
from bench_nas.genotype import Genotype, dims_of
from bench_nas.mutation import INITIAL_RATES, SOURCE_RATES, Rates, mutate

SIZE_OBJECTIVE = "params"


def pareto_ranks(values: np.ndarray) -> np.ndarray:
    """Front index (0 best) of each row of minimised objectives."""
    ranks = np.full(len(values), -1)
    remaining = np.arange(len(values))
    front = 0
    while len(remaining):
        mask = non_dominated(values[remaining])
        ranks[remaining[mask]] = front
        remaining = remaining[~mask]
        front += 1
    return ranks


def crowding(values: np.ndarray, ranks: np.ndarray, axes: list[int]) -> np.ndarray:
    """NSGA-II crowding distance within each front, over the given objective axes."""
    distance = np.zeros(len(values))
    for front in np.unique(ranks):
        members = np.flatnonzero(ranks == front)
        for axis in axes:
            order = members[np.argsort(values[members, axis], kind="stable")]
            span = values[order[-1], axis] - values[order[0], axis]
            distance[order[0]] = distance[order[-1]] = np.inf
            if len(order) > 2 and span > 0:
                distance[order[1:-1]] += (values[order[2:], axis] - values[order[:-2], axis]) / span
    return distance


class NSGA2NAS(Optimizer):
    def __init__(self, *args, mu: int = 8, offspring: int = 12, tournament: int = 3,
                 rates: Rates = SOURCE_RATES, initial_rates: Rates = INITIAL_RATES, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dims = dims_of(self.space)
        self.mu, self.offspring, self.tournament = mu, offspring, tournament
        self.rates, self.initial_rates = rates, initial_rates
        names = [o.name for o in self.objectives]
        self.axes = [names.index(SIZE_OBJECTIVE)] if SIZE_OBJECTIVE in names else list(range(len(names)))
        self.parents: list[tuple[Trial, object]] = []
        self.generation: list[Trial] = []
        self.pending: set[Trial] = set()
        self.generation_index = -1
        self.seen: set[str] = set()

    def _fresh(self, make) -> Trial:
        """A mutation not proposed before (a few retries), as a validated configuration."""
        for _ in range(50):
            genotype = make()
            key = repr(sorted(genotype.to_config().items()))
            if key not in self.seen:
                break
        self.seen.add(key)
        return Trial(validate(self.space, genotype.to_config()), info={"generation": self.generation_index})

    def _scores(self, population) -> tuple[np.ndarray, np.ndarray]:
        values = np.array([self.losses(result) for _, result in population])
        ranks = pareto_ranks(values)
        return ranks, crowding(values, ranks, self.axes)

    def select_parent(self) -> Genotype:
        ranks, distance = self._scores(self.parents)
        picks = self.rng.choice(len(self.parents), size=min(self.tournament, len(self.parents)), replace=False)
        best = min(picks, key=lambda i: (ranks[i], -distance[i]))
        return Genotype.from_config(self.parents[best][0].config, self.dims)

    def _next_generation(self) -> None:
        self.generation_index += 1
        if self.generation_index == 0:
            root = Genotype.parent(self.dims)
            self.generation = [self._fresh(lambda: mutate(root, self.rng, self.initial_rates)) for _ in range(self.mu)]
        else:
            self.generation = [self._fresh(lambda: mutate(self.select_parent(), self.rng, self.rates))
                               for _ in range(self.offspring)]
        self.pending = set(self.generation)

    def ask(self, n: int = 1) -> list[Trial]:
        if not self.generation and not self.pending:
            self._next_generation()
        trials, self.generation = self.generation[:n], self.generation[n:]
        return trials

    def tell(self, trials, results) -> None:
        super().tell(trials, results)
        self.pending -= set(trials)
        if self.pending or self.generation:
            return
        done = {id(t) for t, _ in self.parents}
        current = [(t, r) for t, r in self.history if t.info.get("generation") == self.generation_index
                   and id(t) not in done]
        population = self.parents + current
        ranks, distance = self._scores(population)
        order = sorted(range(len(population)), key=lambda i: (ranks[i], -distance[i]))
        self.parents = [population[i] for i in order[:self.mu]]
