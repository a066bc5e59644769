"""An outside bench plugin: registers through the ``bench`` entry point, like the built-ins."""

from bench.hookspecs import Capabilities, OptimizerSpec, ProblemSpec, hookimpl


@hookimpl
def bench_optimizers():
    return [OptimizerSpec("example-hillclimb", "(1+1) hill climber with Gaussian steps in the unit cube",
                          "bench_example.hillclimb:HillClimb", Capabilities(batch=False))]


@hookimpl
def bench_problems():
    return [ProblemSpec("example/sphere", "Sum of squares on [-5, 5]^3", "bench_example.sphere:Sphere", ("value",))]
