"""Cheap analytic problems for tests and sanity checks.

They have no real cost, so each declares a nominal one: one full-fidelity evaluation
costs 1 second (a fraction of that at lower fidelity), which lets the simulated clock
and cost budgets work on them as on real problems.
"""

from bench.hookspecs import ProblemSpec, hookimpl

_FACTORY = "bench_synthetic.functions:"
_SANITY = {"budget": 50, "objectives": [[]], "mode": "live"}  # the board's sanity section


@hookimpl
def bench_problems():
    return [
        ProblemSpec("synthetic/branin", "Branin, 2-D, minimum 0.397887 at three points",
                    _FACTORY + "Branin", ("value",), board=_SANITY),
        ProblemSpec("synthetic/himmelblau", "Himmelblau, 2-D on [-5, 5]^2, four minima of 0",
                    _FACTORY + "Himmelblau", ("value",)),
        ProblemSpec("synthetic/hartmann6",
                    "Hartmann 6-D, minimum -3.32237; fidelity steps 1-100 with a known bias "
                    "(Pearson 0.90 to full fidelity at 1 step, 0.97 at 50)",
                    _FACTORY + "Hartmann6", ("value",), multi_fidelity=True, board=_SANITY),
        ProblemSpec("synthetic/zdt1", "ZDT1, 30 variables, two objectives f1 and f2 (both minimised)",
                    _FACTORY + "ZDT1", ("f1", "f2"), board=_SANITY),
    ]
