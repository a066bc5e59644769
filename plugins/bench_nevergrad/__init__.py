"""Adapters to nevergrad: ngopt, cma, de, pso, oneplusone (single objective)."""

from bench.hookspecs import Capabilities, OptimizerSpec, hookimpl

_FACTORY = "bench_nevergrad.adapter:NevergradOptimizer"
_CAPS = Capabilities()
# NGOpt picks scipy's Cobyla (one candidate at a time) for small continuous problems: ask() then
# returns one trial until it is told, so it is neither batch nor asynchronous there.
_NGOPT_CAPS = Capabilities(batch=False, asynchronous=False)


@hookimpl
def bench_optimizers():
    return [
        OptimizerSpec("ngopt", "nevergrad NGOpt: picks an algorithm from the space and budget",
                      _FACTORY, _NGOPT_CAPS, {"method": "NGOpt"}),
        OptimizerSpec("cma", "nevergrad CMA-ES", _FACTORY, _CAPS, {"method": "CMA"}),
        OptimizerSpec("de", "nevergrad differential evolution (TwoPointsDE)", _FACTORY, _CAPS,
                      {"method": "TwoPointsDE"}),
        OptimizerSpec("pso", "nevergrad particle swarm optimization", _FACTORY, _CAPS, {"method": "PSO"}),
        OptimizerSpec("oneplusone", "nevergrad (1+1) evolution strategy", _FACTORY, _CAPS, {"method": "OnePlusOne"}),
    ]
