"""Space conversions of the library adapters, and refusals of unsupported pairs."""

import numpy as np
import pytest
from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float, Integer

from bench.registry import Registry
from bench.space import from_unit, validate
from conftest import bench_cli

REGISTRY = Registry()


@pytest.fixture
def mixed():
    space = ConfigurationSpace({
        "learning_rate": Float("learning_rate", (1e-7, 1e-1), log=True),
        "dropout": Float("dropout", (0.0, 0.5)),
        "rank": Integer("rank", (2, 512), log=True),
        "layers": Integer("layers", (1, 12)),
        "activation": Categorical("activation", ["relu", "gelu", "silu"]),
        "slope": Float("slope", (0.01, 0.3)),
    })
    space.add(EqualsCondition(space["slope"], space["activation"], "relu"))
    return space


def test_nevergrad_conversion_round_trips(mixed):
    import nevergrad as ng  # noqa: F401

    from bench_nevergrad.adapter import from_nevergrad, to_nevergrad

    parametrization = to_nevergrad(mixed)
    rng = np.random.default_rng(0)
    for _ in range(300):
        config = from_unit(mixed, rng.random(len(mixed)))
        full = {**{hp.name: parametrization[hp.name].value for hp in mixed.values()}, **config}
        back = from_nevergrad(mixed, parametrization.spawn_child(new_value=full).value)
        assert back.keys() == config.keys()
        for key, value in config.items():
            if isinstance(value, float):
                assert back[key] == pytest.approx(value, rel=1e-12)  # one exp/log round trip
            else:
                assert back[key] == value and type(back[key]) is type(value)
        assert validate(mixed, back) == back


def test_nevergrad_values_stay_inside_the_bounds(mixed):
    from bench_nevergrad.adapter import from_nevergrad, to_nevergrad

    parametrization = to_nevergrad(mixed)
    parametrization.random_state = np.random.RandomState(1)
    for _ in range(300):
        config = from_nevergrad(mixed, parametrization.sample().value)
        assert validate(mixed, config) == config


def test_smac_hyperband_uses_several_fidelities_inside_the_range():
    problem = REGISTRY.problem("synthetic/hartmann6").create()
    optimizer = REGISTRY.optimizer("smac-hyperband").create(problem, problem.objectives, seed=0, budget=20)
    fidelities = []
    for _ in range(120):  # Hyperband's first bracket: 81 at 1 step, 27 at 4, 9 at 11, ...
        [trial] = optimizer.ask(1)
        fidelities.append(trial.fidelity)
        optimizer.tell([trial], [problem.evaluate(trial.config, trial.fidelity, 0)])
    assert len(set(fidelities)) >= 3 and all(1 <= f <= 100 and isinstance(f, int) for f in fidelities)


@pytest.mark.parametrize("args, fragment", [
    (["synthetic/branin", "--optimizer", "nsga2"], "multi-objective only"),
    (["synthetic/zdt1", "--optimizer", "cma"], "single-objective; this run has 2 objectives"),
    (["synthetic/branin", "--optimizer", "hyperband"], "multi-fidelity; this problem has no fidelity"),
])
def test_unsupported_pairs_are_refused_before_running(tmp_path, args, fragment):
    store = tmp_path / "r.sqlite"
    out = bench_cli("run", *args, "--store", str(store))
    assert out.returncode != 0 and fragment in out.stderr and not store.exists()
