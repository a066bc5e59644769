"""Search spaces (ConfigSpace) and fidelity spaces.

A configuration travels through the suite as a plain ``dict`` of Python values (active
hyperparameters only), so it stores as JSON and compares exactly. The unit-cube mapping
here is the one every sampling optimizer (random, grid, Latin hypercube) and every
distance-based lookup uses, so they agree on what "uniform" and "near" mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    Constant,
    FloatHyperparameter,
    IntegerHyperparameter,
    OrdinalHyperparameter,
)
from ConfigSpace.util import deactivate_inactive_hyperparameters


class InvalidConfiguration(ValueError):
    """A configuration outside the space, or a fidelity outside its range."""


@dataclass(frozen=True)
class Fidelity:
    """A budget axis (training steps, epochs, data fraction) from ``min`` to ``max``."""

    name: str
    min: float
    max: float
    integer: bool = True
    levels: tuple[float, ...] | None = None  # the values a table or schedule actually has

    def fraction(self, value: float | None) -> float:
        """Share of a full-fidelity evaluation; budgets count in these units."""
        return 1.0 if value is None else value / self.max

    def check(self, value: float) -> float:
        if not (self.min <= value <= self.max):
            raise InvalidConfiguration(f"{self.name}={value} is outside [{self.min}, {self.max}]")
        if self.levels is not None and value not in self.levels:
            raise InvalidConfiguration(f"{self.name}={value} is not one of the levels {list(self.levels)}")
        return value


def native(value: Any) -> Any:
    """numpy scalars to Python scalars, so configurations round-trip through JSON exactly."""
    return value.item() if isinstance(value, np.generic) else value


def validate(space: ConfigurationSpace, config: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``config`` as a plain dict, or raise InvalidConfiguration with the reason."""
    try:
        checked = Configuration(space, values=dict(config))
        checked.check_valid_configuration()
    except (ValueError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidConfiguration(f"invalid configuration {dict(config)}: {reason}") from exc
    return {name: native(value) for name, value in checked.items()}


def distinct_values(hp) -> float:
    """How many different values a hyperparameter can take (inf for floats)."""
    if isinstance(hp, Constant):
        return 1
    if isinstance(hp, CategoricalHyperparameter):
        return len(hp.choices)
    if isinstance(hp, OrdinalHyperparameter):
        return len(hp.sequence)
    if isinstance(hp, IntegerHyperparameter):
        return int(hp.upper - hp.lower + 1)
    return math.inf


def _from_unit(hp, u: float) -> Any:
    if isinstance(hp, Constant):
        return hp.value
    if isinstance(hp, CategoricalHyperparameter):
        return native(hp.choices[min(int(u * len(hp.choices)), len(hp.choices) - 1)])
    if isinstance(hp, OrdinalHyperparameter):
        return native(hp.sequence[min(int(u * len(hp.sequence)), len(hp.sequence) - 1)])
    if isinstance(hp, IntegerHyperparameter):
        if hp.log:
            value = round(math.exp(math.log(hp.lower) + u * (math.log(hp.upper) - math.log(hp.lower))))
        else:
            value = hp.lower + int(u * (hp.upper - hp.lower + 1))
        return int(min(max(value, hp.lower), hp.upper))
    if isinstance(hp, FloatHyperparameter):
        if hp.log:
            value = math.exp(math.log(hp.lower) + u * (math.log(hp.upper) - math.log(hp.lower)))
        else:
            value = hp.lower + u * (hp.upper - hp.lower)
        return float(min(max(value, hp.lower), hp.upper))
    raise TypeError(f"unsupported hyperparameter type {type(hp).__name__}")


def _to_unit(hp, value: Any) -> float:
    if isinstance(hp, Constant):
        return 0.5
    if isinstance(hp, (CategoricalHyperparameter, OrdinalHyperparameter)):
        options = list(hp.choices if isinstance(hp, CategoricalHyperparameter) else hp.sequence)
        return (options.index(value) + 0.5) / len(options)
    if isinstance(hp, IntegerHyperparameter) and not hp.log:
        return (value - hp.lower + 0.5) / (hp.upper - hp.lower + 1)
    if hp.log:
        return (math.log(value) - math.log(hp.lower)) / (math.log(hp.upper) - math.log(hp.lower))
    return (value - hp.lower) / (hp.upper - hp.lower)


def from_unit(space: ConfigurationSpace, u: np.ndarray) -> dict[str, Any]:
    """Map a point of [0, 1]^d (one coordinate per hyperparameter, in space order) to a configuration.

    Integers and categoricals get equal-width cells, log-scale parameters are uniform in
    the log; parameters made inactive by a condition are dropped.
    """
    hps = list(space.values())
    values = {hp.name: _from_unit(hp, float(x)) for hp, x in zip(hps, u, strict=True)}
    if space.conditions:
        values = {k: native(v) for k, v in deactivate_inactive_hyperparameters(values, space).items()}
    return values


def to_unit(space: ConfigurationSpace, config: Mapping[str, Any]) -> np.ndarray:
    """The inverse of ``from_unit`` (cell centres for integers and categoricals; NaN where inactive)."""
    return np.array(
        [_to_unit(hp, config[hp.name]) if hp.name in config else math.nan for hp in space.values()],
        dtype=float,
    )
