"""Adapters to pymoo (multi-objective, ask/tell): nsga2, nsga3, moead, smsemoa."""

from bench.hookspecs import Capabilities, OptimizerSpec, hookimpl

_FACTORY = "bench_pymoo.adapter:PymooOptimizer"
# A generation is proposed at once and told back whole: ask() waits (returns []) in between.
_CAPS = Capabilities(single_objective=False, multi_objective=True, asynchronous=False)


@hookimpl
def bench_optimizers():
    return [
        OptimizerSpec("nsga2", "pymoo NSGA-II: non-dominated sorting and crowding distance", _FACTORY, _CAPS,
                      {"algorithm": "nsga2"}, ("pymoo",)),
        OptimizerSpec("nsga3", "pymoo NSGA-III: reference directions instead of crowding", _FACTORY, _CAPS,
                      {"algorithm": "nsga3"}, ("pymoo",)),
        OptimizerSpec("moead", "pymoo MOEA/D: decomposition into scalar subproblems (one offspring at a time)",
                      _FACTORY, Capabilities(single_objective=False, multi_objective=True, asynchronous=False,
                                             batch=False), {"algorithm": "moead"}, ("pymoo",)),
        OptimizerSpec("smsemoa", "pymoo SMS-EMOA: hypervolume-based selection", _FACTORY, _CAPS,
                      {"algorithm": "smsemoa"}, ("pymoo",)),
    ]
