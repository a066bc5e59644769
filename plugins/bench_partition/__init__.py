"""Partition-based optimizers of the LoRA HPO seed: SOO and BaMSOO (K=3)."""

from bench.hookspecs import Capabilities, OptimizerSpec, hookimpl

# An expansion's two new centres are proposed together; the next expansion needs their values.
_CAPS = Capabilities(batch=False, asynchronous=False)


@hookimpl
def bench_optimizers():
    return [
        OptimizerSpec("soo", "Simultaneous optimistic optimization, K=3 (deterministic; the middle child inherits "
                      "its parent's value)", "bench_partition.soo:SOO", _CAPS),
        OptimizerSpec("bamsoo", "Bayesian multi-scale SOO: a new cell is evaluated only if a GP's optimistic bound "
                      "can beat the best; otherwise it is scored by the GP and not charged", "bench_partition.soo:BaMSOO",
                      _CAPS, requires=("botorch", "torch")),
    ]
