import math

import numpy as np
import pytest
from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float, Integer

from bench.space import Fidelity, InvalidConfiguration, check, distinct_values, from_unit, to_unit, validate


@pytest.fixture
def space():
    cs = ConfigurationSpace({
        "learning_rate": Float("learning_rate", (1e-6, 1e-1), log=True),
        "lora_rank": Integer("lora_rank", (2, 64)),
        "heads": Integer("heads", (1, 16), log=True),
        "activation": Categorical("activation", ["relu", "gelu"]),
        "slope": Float("slope", (0.0, 0.5)),
    })
    cs.add(EqualsCondition(cs["slope"], cs["activation"], "relu"))
    return cs


def test_unit_mapping_covers_the_space_and_drops_inactive(space):
    rng = np.random.default_rng(0)
    configs = [from_unit(space, rng.random(len(space))) for _ in range(2000)]
    for config in configs[:200]:
        assert validate(space, config) == config
        assert ("slope" in config) == (config["activation"] == "relu")
    ranks = [c["lora_rank"] for c in configs]
    assert min(ranks) == 2 and max(ranks) == 64 and all(isinstance(r, int) for r in ranks)
    lr = np.log10([c["learning_rate"] for c in configs])
    assert abs(np.median(lr) - (-3.5)) < 0.15  # log-uniform: the median sits at the middle of the log range
    assert {type(c["activation"]) for c in configs} == {str}


def test_to_unit_inverts_from_unit(space):
    rng = np.random.default_rng(1)
    for _ in range(200):
        config = from_unit(space, rng.random(len(space)))
        back = from_unit(space, np.nan_to_num(to_unit(space, config), nan=0.0))
        assert back.keys() == config.keys()
        for key, value in config.items():
            assert back[key] == (value if isinstance(value, str) else pytest.approx(value, rel=1e-12))
    assert math.isnan(to_unit(space, {"learning_rate": 1e-3, "lora_rank": 8, "heads": 4, "activation": "gelu"})[4])


def test_validate_names_the_problem(space):
    with pytest.raises(InvalidConfiguration, match="lora_rank"):
        validate(space, {"learning_rate": 1e-3, "lora_rank": 65, "heads": 4, "activation": "gelu"})
    with pytest.raises(InvalidConfiguration):
        validate(space, {"learning_rate": 1e-3, "lora_rank": 8, "heads": 4, "activation": "gelu", "slope": 0.1})


def accepts(function, space, config) -> bool:
    try:
        function(space, config)
    except InvalidConfiguration:
        return False
    return True


@pytest.mark.parametrize("conditional", [True, False])
def test_check_decides_exactly_as_validate(space, conditional):
    """The fast check accepts and refuses what ConfigSpace does: bounds, exact types, choices, missing and extra
    names, numpy scalars, NaN, unhashable values; with a condition, and in a space that grows after a check."""
    if not conditional:
        space = ConfigurationSpace({name: hp for name, hp in space.items()})
    base = {"learning_rate": 1e-3, "lora_rank": 8, "heads": 4, "activation": "relu", "slope": 0.2}
    variants = [{}, {"learning_rate": 1e-6}, {"learning_rate": 1e-1}, {"learning_rate": 0.2}, {"learning_rate": 1e-7},
                {"learning_rate": math.nan}, {"learning_rate": 1}, {"learning_rate": np.float64(1e-3)},
                {"lora_rank": 64}, {"lora_rank": 65}, {"lora_rank": 8.0}, {"lora_rank": True}, {"lora_rank": np.int64(8)},
                {"heads": 1}, {"heads": 0}, {"activation": "gelu"}, {"activation": "tanh"}, {"activation": ["relu"]},
                {"slope": 0.5}, {"slope": 0}, {"slope": -0.1}, {"extra": 1}]
    configs = [{**base, **v} for v in variants] + [{k: v for k, v in base.items() if k != "slope"},
                                                  {k: v for k, v in base.items() if k != "heads"}]
    decisions = [(accepts(check, space, c), accepts(validate, space, c)) for c in configs]
    assert all(fast == slow for fast, slow in decisions), [c for c, (f, s) in zip(configs, decisions) if f != s]
    assert 5 < sum(slow for _, slow in decisions) < len(configs) - 5  # both kinds of answer were asked for
    space.add(Integer("layers", (1, 4)))  # grown after being checked: the new parameter is required
    assert not accepts(check, space, {k: v for k, v in configs[0].items()})
    assert accepts(check, space, {**configs[0], "layers": 2})


def test_distinct_values(space):
    assert [distinct_values(hp) for hp in space.values()] == [2, 16, math.inf, 63, math.inf]


def test_fidelity_checks_range_and_levels():
    steps = Fidelity("steps", 10, 100, levels=(10, 50, 100))
    assert steps.fraction(50) == 0.5 and steps.fraction(None) == 1.0
    assert steps.check(50) == 50
    with pytest.raises(InvalidConfiguration, match="levels"):
        steps.check(60)
    with pytest.raises(InvalidConfiguration, match="outside"):
        steps.check(200)
