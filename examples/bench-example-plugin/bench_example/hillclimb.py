"""A (1+1) hill climber: step from the best configuration so far."""

import numpy as np

from bench.plugin import Optimizer, Trial, from_unit, to_unit


class HillClimb(Optimizer):
    step = 0.1

    def ask(self, n=1):
        best = self.incumbent()
        if not best:
            return [Trial(from_unit(self.space, self.rng.random(len(self.space))))]
        centre = to_unit(self.space, best[0][0].config)
        # an inactive conditional parameter is NaN in the unit cube: draw it afresh in case the step activates it
        centre = np.where(np.isnan(centre), self.rng.random(centre.shape), centre)
        return [Trial(from_unit(self.space, np.clip(centre + self.rng.normal(0, self.step, centre.shape), 0, 1)))]
