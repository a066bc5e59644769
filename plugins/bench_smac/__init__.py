"""Adapters to SMAC3: bo-gp (GP + EI, the reference BO), smac-rf, smac-hyperband."""

from bench.hookspecs import hookimpl


@hookimpl
def bench_optimizers():
    return []
