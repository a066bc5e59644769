"""Adapters to nevergrad: ngopt, cma, de, pso, oneplusone (single objective)."""

from bench.hookspecs import Capabilities, OptimizerSpec, hookimpl

_FACTORY = "bench_nevergrad.adapter:NevergradOptimizer"
_CAPS = Capabilities()
_REQUIRES = ("nevergrad",)
# NGOpt picks scipy's Cobyla (one candidate at a time) for small continuous problems: ask() then
# returns one trial until it is told, so it is neither batch nor asynchronous there.
_NGOPT_CAPS = Capabilities(batch=False, asynchronous=False)


@hookimpl
def bench_optimizers():
    return [
        OptimizerSpec("ngopt", "nevergrad NGOpt: picks an algorithm from the space and budget",
                      _FACTORY, _NGOPT_CAPS, {"method": "NGOpt"}, requires=_REQUIRES),
        OptimizerSpec("cma", "nevergrad CMA-ES", _FACTORY, _CAPS, {"method": "CMA"}, requires=_REQUIRES),
        OptimizerSpec("de", "nevergrad differential evolution (TwoPointsDE)", _FACTORY, _CAPS,
                      {"method": "TwoPointsDE"}, requires=_REQUIRES),
        OptimizerSpec("pso", "nevergrad particle swarm optimization", _FACTORY, _CAPS, {"method": "PSO"},
                      requires=_REQUIRES),
        OptimizerSpec("oneplusone", "nevergrad (1+1) evolution strategy", _FACTORY, _CAPS, {"method": "OnePlusOne"},
                      requires=_REQUIRES),
    ]
