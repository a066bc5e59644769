"""Partition-based optimizers of the LoRA HPO seed: SOO and BaMSOO."""

from bench.hookspecs import hookimpl


@hookimpl
def bench_optimizers():
    return []
