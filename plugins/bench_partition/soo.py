"""SOO (Munos, 2011) and BaMSOO (Wang et al., 2014) with K=3 on the unit cube of the space.

A cell is split along its widest side into three; the two outer centres are new points and
the middle child, whose centre is its parent's, inherits the parent's value. Each sweep runs
over depths 0..min(deepest, h_max) with h_max = sqrt(n evaluations), expanding the best leaf
of a depth if it is at least as good as every leaf expanded at a smaller depth in that sweep.
Values are losses (the objective turned to minimisation); a failed or diverged trial counts
as +inf, so its cell is never preferred over a measured one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import count

import numpy as np

from bench.optimizer import Optimizer
from bench.space import from_unit
from bench.trial import Trial


@dataclass(eq=False)
class Cell:
    low: np.ndarray
    high: np.ndarray
    depth: int
    order: int  # creation order: ties go to the older cell
    loss: float = math.nan
    scored_by_gp: bool = False

    @property
    def centre(self) -> np.ndarray:
        return (self.low + self.high) / 2

    def split(self, orders) -> list["Cell"]:
        dim = int(np.argmax(self.high - self.low))
        width = (self.high[dim] - self.low[dim]) / 3
        children = []
        for k in range(3):
            low, high = self.low.copy(), self.high.copy()
            low[dim], high[dim] = self.low[dim] + k * width, self.low[dim] + (k + 1) * width
            children.append(Cell(low, high, self.depth + 1, next(orders)))
        children[1].loss, children[1].scored_by_gp = self.loss, self.scored_by_gp
        return children


class SOO(Optimizer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._search = self._sweeps()
        self._batch: list[Cell] = next(self._search)
        self._queue: list[Cell] = list(self._batch)
        self._trials: dict[Trial, Cell] = {}
        self._objective = self.objectives[0]
        self.evaluations = 0

    def ask(self, n: int = 1) -> list[Trial]:
        if not self._queue and all(not math.isnan(c.loss) for c in self._batch):
            self._batch = self._search.send(None)
            self._queue = list(self._batch)
        trials = []
        while self._queue and len(trials) < n:
            cell = self._queue.pop(0)
            trial = Trial(from_unit(self.space, cell.centre), info=self._note(cell))
            self._trials[trial] = cell
            trials.append(trial)
        return trials

    def _note(self, cell: Cell) -> dict:
        return {"depth": cell.depth}

    def tell(self, trials, results) -> None:
        super().tell(trials, results)
        for trial, result in zip(trials, results):
            cell = self._trials.pop(trial)
            cell.loss = self._objective.sign * result.objectives[self._objective.name] if result.ok else math.inf
            self.evaluations += 1

    def _new_cells(self, cells: list[Cell]):
        """Evaluate ``cells`` (a generator step): yield them and wait until all are told."""
        yield cells

    def _sweeps(self):
        orders = count()
        root = Cell(np.zeros(len(self.space)), np.ones(len(self.space)), 0, next(orders))
        yield from self._new_cells([root])
        leaves = [root]
        while True:
            expanded = False
            h_max = math.sqrt(max(self.evaluations, 1))
            best_so_far = math.inf
            for depth in range(0, min(max(c.depth for c in leaves), int(h_max)) + 1):
                candidates = [c for c in leaves if c.depth == depth]
                if not candidates:
                    continue
                best = min(candidates, key=lambda c: (c.loss, c.order))
                if best.loss <= best_so_far:
                    children = best.split(orders)
                    leaves.remove(best)
                    leaves.extend(children)
                    yield from self._new_cells([children[0], children[2]])
                    best_so_far = best.loss
                    expanded = True
            if not expanded:  # every leaf is deeper than h_max allows yet: expand the best one
                best = min(leaves, key=lambda c: (c.loss, c.order))
                children = best.split(orders)
                leaves.remove(best)
                leaves.extend(children)
                yield from self._new_cells([children[0], children[2]])


class BaMSOO(SOO):
    """SOO whose new centres are evaluated only where a GP's lower confidence bound (on the
    loss; bo-gp's model, ``bench_botorch.gp.fit_gp``) reaches the best loss seen; elsewhere the
    GP's upper bound scores the cell, which is neither a trial nor charged to the budget. Those cells are recorded in the ``gp_scored``
    note of the next trial proposed, never as measurements."""

    ETA = 1.0

    def __init__(self, *args, **kwargs) -> None:
        self._gp_scored: list[dict] = []
        self._scored_count = 0
        self._evaluated: list[Cell] = []
        self._hyperparameters = None
        super().__init__(*args, **kwargs)

    def _note(self, cell: Cell) -> dict:
        note = {"depth": cell.depth}
        if self._gp_scored:
            note["gp_scored"], self._gp_scored = self._gp_scored, []
        return note

    def _new_cells(self, cells: list[Cell]):
        measured = [(c.centre, c.loss) for c in self._evaluated if math.isfinite(c.loss)]
        if len(measured) < 2:
            yield cells
            self._evaluated.extend(cells)
            return
        import torch

        from bench_botorch.gp import fit_gp, hyperparameters, one_thread, seeded

        x = np.array([m[0] for m in measured])
        y = np.array([m[1] for m in measured])
        with one_thread(), seeded(len(measured)):  # bo-gp's model, its fit started where the last one ended
            model = fit_gp(x, y, self._hyperparameters, noise_free=self.deterministic)
            self._hyperparameters = hyperparameters(model)
            with torch.no_grad():
                posterior = model.posterior(torch.as_tensor(np.array([c.centre for c in cells])))
                mean, std = posterior.mean[:, 0].numpy(), posterior.variance[:, 0].sqrt().numpy()
        nodes = len(self._evaluated) + self._scored_count
        beta = math.sqrt(2 * math.log(math.pi**2 * nodes**2 / (6 * self.ETA)))
        to_evaluate = []
        for cell, mu, sigma in zip(cells, mean, std):
            lcb, ucb = float(mu - beta * sigma), float(mu + beta * sigma)
            if lcb <= y.min():
                to_evaluate.append(cell)
            else:
                cell.loss, cell.scored_by_gp = ucb, True
                self._scored_count += 1
                self._gp_scored.append({"config": from_unit(self.space, cell.centre), "depth": cell.depth,
                                        "loss_mean": float(mu), "loss_lcb": lcb, "loss_ucb": ucb})
        if to_evaluate:
            yield to_evaluate
            self._evaluated.extend(to_evaluate)
