"""Adapters to pymoo (multi-objective, ask/tell): nsga2, nsga3, moead, smsemoa."""

from bench.hookspecs import hookimpl


@hookimpl
def bench_optimizers():
    return []
