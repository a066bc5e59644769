"""Multi-fidelity bandits on the problem's fidelity: Hyperband and asynchronous successive halving."""

from bench.hookspecs import Capabilities, OptimizerSpec, hookimpl


@hookimpl
def bench_optimizers():
    return [
        OptimizerSpec("hyperband", "Hyperband (eta=3, or the fidelity's range where narrower): successive-halving"
                      " brackets of random configurations",
                      "bench_hyperband.bandits:Hyperband", Capabilities(multi_fidelity=True, asynchronous=False)),
        OptimizerSpec("asha", "Asynchronous successive halving (eta as hyperband): promote the top 1/eta of each rung"
                      " at once",
                      "bench_hyperband.bandits:ASHA", Capabilities(multi_fidelity=True)),
    ]
