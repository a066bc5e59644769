"""The nevergrad adapter: exact space conversion, sequential optimizers, penalties, seeding."""

import threading

import numpy as np
import pytest
from ConfigSpace import (
    Categorical,
    ConfigurationSpace,
    Constant,
    EqualsCondition,
    Float,
    Integer,
    OrdinalHyperparameter,
)

from bench.problem import Objective
from bench.space import from_unit, validate
from bench.trial import Result

ng = pytest.importorskip("nevergrad")
from bench_nevergrad.adapter import NevergradOptimizer, from_nevergrad, to_nevergrad  # noqa: E402


@pytest.fixture
def mixed():
    space = ConfigurationSpace({
        "learning_rate": Float("learning_rate", (1e-6, 1e-1), log=True),
        "dropout": Float("dropout", (0.0, 0.5)),
        "rank": Integer("rank", (2, 512), log=True),
        "layers": Integer("layers", (1, 12)),
        "activation": Categorical("activation", ["relu", "gelu", "silu"]),
        "slope": Float("slope", (0.01, 0.3)),
        "precision": OrdinalHyperparameter("precision", ["fp16", "bf16", "fp32"]),
        "optimizer": Constant("optimizer", "adamw"),
    })
    space.add(EqualsCondition(space["slope"], space["activation"], "relu"))
    return space


def ask_with_timeout(optimizer, n, seconds=20.0):
    """ask(n) on a thread, so a nevergrad ask that blocks fails the test instead of hanging it."""
    out = []

    def ask():
        try:
            out.append(optimizer.ask(n))
        except Exception as exc:  # noqa: BLE001 - raised again below, in the test's thread
            out.append(exc)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "ask() blocked"
    if isinstance(out[0], Exception):
        raise out[0]
    return out[0]


def test_config_to_nevergrad_value_and_back_is_identical(mixed):
    parametrization = to_nevergrad(mixed)
    assert isinstance(parametrization["learning_rate"], ng.p.Log)
    assert isinstance(parametrization["activation"], ng.p.Choice)
    assert isinstance(parametrization["precision"], ng.p.TransitionChoice)
    rng = np.random.default_rng(0)
    for _ in range(500):
        config = from_unit(mixed, rng.random(len(mixed)))
        inactive = {hp.name: parametrization[hp.name].value for hp in mixed.values()}  # a value for every key
        back = from_nevergrad(mixed, parametrization.spawn_child(new_value={**inactive, **config}).value)
        assert back == config
        assert [type(v) for v in back.values()] == [type(v) for v in config.values()]
    assert {"slope" in from_unit(mixed, rng.random(len(mixed))) for _ in range(50)} == {True, False}


def test_sampled_values_are_valid_configurations(mixed):
    parametrization = to_nevergrad(mixed)
    parametrization.random_state = np.random.RandomState(1)
    for _ in range(300):
        config = from_nevergrad(mixed, parametrization.sample().value)
        assert validate(mixed, config) == config
        assert isinstance(config["rank"], int) and isinstance(config["activation"], str)


def branin_space():
    return ConfigurationSpace({"x1": Float("x1", (-5.0, 10.0)), "x2": Float("x2", (0.0, 15.0))})


def test_a_sequential_choice_is_asked_one_at_a_time():
    """NGOpt runs Cobyla here, whose ask() would wait forever for the pending tell."""
    optimizer = NevergradOptimizer(branin_space(), [Objective("y")], seed=0, budget=30, method="NGOpt")
    first = ask_with_timeout(optimizer, 4)
    assert len(first) == 1 and ask_with_timeout(optimizer, 1) == []
    optimizer.tell(first, [Result({"y": 1.0}, 0.0)])
    assert len(ask_with_timeout(optimizer, 4)) == 1


def test_a_space_of_numbers_is_searched_as_one_array_of_the_unit_cube(mixed):
    """Cheaper to ask and tell than a Dict (nevergrad copies every child), and mapped as every sampler maps."""
    numbers = ConfigurationSpace({"lr": Float("lr", (1e-6, 1e-1), log=True), "rank": Integer("rank", (2, 512), log=True)})
    optimizer = NevergradOptimizer(numbers, [Objective("y")], seed=0, budget=30, method="CMA")
    assert isinstance(optimizer.parametrization, ng.p.Array)
    for trial in optimizer.ask(4):
        assert trial.config == from_unit(numbers, optimizer._candidates[trial].value)
        validate(numbers, trial.config)  # raises if it is not a configuration of the space
    assert isinstance(NevergradOptimizer(mixed, [Objective("y")], seed=0, budget=30, method="CMA").parametrization,
                      ng.p.Dict)  # categoricals and conditions keep nevergrad's own parameters


@pytest.mark.parametrize("method", ["CMA", "TwoPointsDE", "PSO", "OnePlusOne"])
def test_batches_of_the_population_methods(method):
    optimizer = NevergradOptimizer(branin_space(), [Objective("y")], seed=0, budget=30, method=method)
    trials = ask_with_timeout(optimizer, 6)
    assert len({tuple(t.config.values()) for t in trials}) == 6
    optimizer.tell(trials, [Result({"y": float(i)}, 0.0) for i in range(6)])
    assert len(ask_with_timeout(optimizer, 6)) == 6


def test_ngopt_metamodel_survives_numpy_scalar_conversion():
    """NGOpt picks MetaModel for one float at budget 200; its model step used to raise a TypeError."""
    space = ConfigurationSpace({"x": Float("x", (-3.0, 3.0))})
    optimizer = NevergradOptimizer(space, [Objective("y")], seed=0, budget=200, method="NGOpt")
    for _ in range(40):
        [trial] = ask_with_timeout(optimizer, 1)
        optimizer.tell([trial], [Result({"y": (trial.config["x"] - 1.0) ** 2}, 0.0)])
    assert "MetaModel" in optimizer._ng.optim.name
    assert optimizer.incumbent()[0][1].objectives["y"] < 0.1


def test_failures_are_told_the_worst_loss_seen(monkeypatch):
    optimizer = NevergradOptimizer(branin_space(), [Objective("y", "max")], seed=0, budget=30, method="CMA")
    told = []
    tell = optimizer._ng.tell
    monkeypatch.setattr(optimizer._ng, "tell", lambda candidate, loss: (told.append(loss), tell(candidate, loss)))
    trials = optimizer.ask(4)
    optimizer.tell(trials[:1], [Result.failure("boom", 0.0)])
    optimizer.tell(trials[1:3], [Result({"y": 2.0}, 0.0), Result({"y": 5.0}, 0.0)])
    optimizer.tell(trials[3:], [Result.failure("nan", 0.0)])
    assert told[0] > 1e9 and told[1:] == [-2.0, -5.0, -2.0]  # maximised: the worst is the smallest value


@pytest.mark.parametrize("method", ["NGOpt", "CMA", "TwoPointsDE", "PSO", "OnePlusOne"])
def test_seeded(mixed, method):
    def trials(seed):
        optimizer = NevergradOptimizer(mixed, [Objective("y")], seed=seed, budget=20, method=method)
        configs = []
        for i in range(6):
            [trial] = optimizer.ask(1)
            optimizer.tell([trial], [Result({"y": float(i % 4)}, 0.0)])
            configs.append(trial.config)
        return configs

    assert trials(3) == trials(3)
    assert trials(3) != trials(4)
