"""Baseline optimizers: random search, grid search, Latin hypercube sampling, simulated annealing."""

from bench.hookspecs import Capabilities, OptimizerSpec, hookimpl

# Samplers ignore results, so they handle any objective count, batch and async use.
_SAMPLER = Capabilities(multi_objective=True)


@hookimpl
def bench_optimizers():
    return [
        OptimizerSpec("random", "Random search, uniform in the space (log-uniform on log scales)",
                      "bench_baselines.samplers:RandomSearch", _SAMPLER),
        OptimizerSpec("grid", "Grid search over cell centres, visited in a seeded random order",
                      "bench_baselines.samplers:GridSearch", _SAMPLER),
        OptimizerSpec("lhs", "Latin hypercube sample of the whole budget (the LoRA HPO seed's baseline)",
                      "bench_baselines.samplers:LatinHypercube", _SAMPLER),
        OptimizerSpec("sa", "Simulated annealing: Gaussian steps in the unit cube, geometric cooling over the budget",
                      "bench_baselines.annealing:SimulatedAnnealing", Capabilities()),
    ]
