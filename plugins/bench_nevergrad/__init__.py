"""Adapters to nevergrad: ngopt, cma, de, pso, oneplusone (single objective)."""

from bench.hookspecs import Capabilities, OptimizerSpec, hookimpl

_FACTORY = "bench_nevergrad.adapter:NevergradOptimizer"
_CAPS = Capabilities()


@hookimpl
def bench_optimizers():
    return [
        OptimizerSpec("ngopt", "nevergrad NGOpt: picks an algorithm from the space, budget and workers",
                      _FACTORY, _CAPS, {"method": "NGOpt"}),
        OptimizerSpec("cma", "nevergrad CMA-ES", _FACTORY, _CAPS, {"method": "CMA"}),
        OptimizerSpec("de", "nevergrad differential evolution (TwoPointsDE)", _FACTORY, _CAPS,
                      {"method": "TwoPointsDE"}),
        OptimizerSpec("pso", "nevergrad particle swarm optimization", _FACTORY, _CAPS, {"method": "PSO"}),
        OptimizerSpec("oneplusone", "nevergrad (1+1) evolution strategy", _FACTORY, _CAPS, {"method": "OnePlusOne"}),
    ]
