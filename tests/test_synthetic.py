import math

import numpy as np
import pytest
from scipy.stats import pearsonr

from bench.registry import Registry
from bench_synthetic.functions import hartmann6, hartmann6_at


@pytest.fixture(scope="module")
def registry():
    return Registry()


@pytest.mark.parametrize("name, config, expected", [
    ("synthetic/branin", {"x1": -math.pi, "x2": 12.275}, 0.397887),
    ("synthetic/branin", {"x1": math.pi, "x2": 2.275}, 0.397887),
    ("synthetic/himmelblau", {"x": 3.0, "y": 2.0}, 0.0),
    ("synthetic/hartmann6", dict(zip([f"x{i}" for i in range(1, 7)],
                                     [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573])), -3.32237),
])
def test_known_optima(registry, name, config, expected):
    problem = registry.problem(name).create()
    result = problem.evaluate(config, None if problem.fidelity is None else problem.fidelity.max, 0)
    assert result.objectives["value"] == pytest.approx(expected, abs=1e-5)
    assert problem.objectives[0].optimum == pytest.approx(expected, abs=1e-5)
    assert result.source == "analytic" and result.cost == 1.0


def test_zdt1_front(registry):
    problem = registry.problem("synthetic/zdt1").create()
    config = {f"x{i:02d}": 0.0 for i in range(1, 31)} | {"x01": 0.36}
    assert problem.evaluate(config, None, 0).objectives == pytest.approx({"f1": 0.36, "f2": 0.4})


def test_hartmann6_fidelity_correlation_is_as_documented():
    x = np.random.default_rng(0).random((100_000, 6))
    full = hartmann6(x)
    for steps, documented in [(1, 0.898), (10, 0.913), (50, 0.970), (90, 0.999)]:
        assert pearsonr(hartmann6_at(x, steps), full)[0] == pytest.approx(documented, abs=0.0015)
    assert np.array_equal(hartmann6_at(x, 100), full)


def test_hartmann6_cost_scales_with_fidelity(registry):
    problem = registry.problem("synthetic/hartmann6").create()
    config = {f"x{i}": 0.5 for i in range(1, 7)}
    assert problem.evaluate(config, 10, 0).cost == pytest.approx(0.1)


HUB_ONLY = {"distilbert-nas/distilbert-squad"}  # no offline default; checked with local stand-ins in test_nas_live


def test_specs_match_the_problems_they_create(registry):
    """ProblemSpec.create refuses an instance whose objectives or fidelity differ from its spec's."""
    for name, spec in registry.problems.items():
        if name in HUB_ONLY:
            continue
        problem = spec.create()
        assert [o.name for o in problem.objectives] == list(spec.objectives), name
