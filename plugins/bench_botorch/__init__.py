"""BoTorch: bo-gp, the LoRA HPO source's BO (a GP on the unit cube with log expected improvement)."""

from bench.hookspecs import Capabilities, OptimizerSpec, hookimpl


@hookimpl
def bench_optimizers():
    return [
        OptimizerSpec("bo-gp", "BO as the LoRA HPO source ran it: 10 Latin hypercube points, then a GP (BoTorch "
                      "SingleTaskGP, unit-cube inputs, standardized outputs) and log expected improvement "
                      "(noisy LogEI on noisy problems)", "bench_botorch.gp:GPBO", Capabilities(), requires=("botorch", "torch")),
    ]
