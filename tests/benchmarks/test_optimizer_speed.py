"""Per-suggestion time (ask + tell) of every registered optimizer on a 5-D space, after 30
observations. `random` in the same group is the baseline for the ratios."""

import math

import pytest

from bench.problem import Objective, Problem
from bench.space import Fidelity
from bench.trial import Result
from bench_lora.spaces import lora_space
from conftest import checkout_registry

REGISTRY = checkout_registry()


class LoraLike(Problem):
    """The 5-D LoRA HPO space with a cheap smooth stand-in objective (two of them, and a fidelity)."""

    space = lora_space()
    objectives = (Objective("loss", "min"), Objective("size", "min"))
    fidelity = Fidelity("steps", 1, 27)

    def evaluate(self, config, fidelity, seed):
        loss = (math.log10(config["learning_rate"]) + 4) ** 2 + config["lora_dropout"] + 27 / (fidelity or 27)
        return Result({"loss": loss, "size": config["lora_rank"] * config["lora_alpha"]}, cost=1.0)


def step(problem, optimizer):
    trials = optimizer.ask(1)
    if trials:
        optimizer.tell(trials, [problem.evaluate(t.config, t.fidelity, 0) for t in trials])


@pytest.mark.benchmark(group="per-suggestion")
@pytest.mark.parametrize("name", sorted(n for n in REGISTRY.optimizers  # a problem's own search: not this space
                                         if REGISTRY.optimizer(n).capabilities.genotype is None))
def test_per_suggestion(benchmark, name):
    spec = REGISTRY.optimizer(name)
    problem = LoraLike("live")
    objectives = problem.select_objectives(("loss",) if spec.capabilities.single_objective else ("loss", "size"))
    optimizer = spec.create(problem, objectives, seed=0, budget=200)
    warm_up = 3 if benchmark.disabled else 30  # the plain test run only checks that it works
    for _ in range(warm_up):
        step(problem, optimizer)
    benchmark.pedantic(step, args=(problem, optimizer), rounds=20, iterations=1)
    assert len(optimizer.history) >= warm_up
