"""Multi-fidelity bandits on the problem's fidelity: hyperband and asha."""

from bench.hookspecs import hookimpl


@hookimpl
def bench_optimizers():
    return []
