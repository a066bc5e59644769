"""Search spaces (ConfigSpace) and fidelity spaces.

A configuration travels through the suite as a plain ``dict`` of Python values (active
hyperparameters only), so it stores as JSON and compares exactly. The unit-cube mapping
here is the one every sampling optimizer (random, grid, Latin hypercube) and every
distance-based lookup uses, so they agree on what "uniform" and "near" mean.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping
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


def check(space: ConfigurationSpace, config: Mapping[str, Any]) -> None:
    """Raise InvalidConfiguration unless ``config`` is in ``space``, as ``validate`` would: a plain configuration
    (every parameter, of its exact Python type, inside its bounds or among its choices, in a space without
    conditions or forbidden clauses) is accepted at a lookup's speed; anything else goes through ``validate``,
    which decides, so every refusal reads the same."""
    rules = _plan(space).rules
    try:
        if rules is not None and config.keys() == rules.keys() and all(rules[k](v) for k, v in config.items()):
            return
    except TypeError:  # an unhashable value: ``validate`` says what is wrong with it
        pass
    validate(space, config)


@dataclass(frozen=True)
class _Plan:
    """What ``check`` and ``to_unit`` need of a space, read from its hyperparameters once."""

    rules: dict[str, Callable[[Any], bool]] | None  # per parameter, a test its plain values pass; None: ask ConfigSpace
    unit: tuple[tuple[str, Callable[[Any], float]], ...]  # per parameter in space order, its map to [0, 1]


_PLANS: dict[int, tuple[Any, tuple[int, int, int], _Plan]] = {}


def _plan(space: ConfigurationSpace) -> _Plan:
    """The space's plan, kept per live space object (spaces are unhashable) and made again when one grows."""
    shape = (len(space), len(space.conditions), len(space.forbidden_clauses))
    entry = _PLANS.get(id(space))
    if entry is None or entry[0]() is not space or entry[1] != shape:
        rules = {}
        for hp in space.values():
            if isinstance(hp, (FloatHyperparameter, IntegerHyperparameter)):
                kind = float if isinstance(hp, FloatHyperparameter) else int
                rules[hp.name] = lambda v, kind=kind, lo=hp.lower, hi=hp.upper: type(v) is kind and lo <= v <= hi
            elif isinstance(hp, (CategoricalHyperparameter, OrdinalHyperparameter, Constant)):
                options = hp.choices if isinstance(hp, CategoricalHyperparameter) else (
                    hp.sequence if isinstance(hp, OrdinalHyperparameter) else (hp.value,))
                rules[hp.name] = lambda v, allowed=frozenset((type(o), o) for o in options): (type(v), v) in allowed
            else:
                rules = None
                break
        plan = _Plan(None if rules is None or shape[1] or shape[2] else rules,
                     tuple((hp.name, _unit_map(hp)) for hp in space.values()))
        entry = (weakref.ref(space, lambda _, key=id(space): _PLANS.pop(key, None)), shape, plan)
        _PLANS[id(space)] = entry
    return entry[2]


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


def _unit_map(hp) -> Callable[[Any], float]:
    """The map of one parameter's values to [0, 1] that ``to_unit`` applies."""
    if isinstance(hp, Constant):
        return lambda value: 0.5
    if isinstance(hp, (CategoricalHyperparameter, OrdinalHyperparameter)):
        options = list(hp.choices if isinstance(hp, CategoricalHyperparameter) else hp.sequence)
        return lambda value: (options.index(value) + 0.5) / len(options)
    if isinstance(hp, IntegerHyperparameter) and not hp.log:
        low, cells = hp.lower, hp.upper - hp.lower + 1
        return lambda value: (value - low + 0.5) / cells
    if hp.log:
        low, span = math.log(hp.lower), math.log(hp.upper) - math.log(hp.lower)
        return lambda value: (math.log(value) - low) / span
    low, span = hp.lower, hp.upper - hp.lower
    return lambda value: (value - low) / span


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
    return np.array([unit(config[name]) if name in config else math.nan for name, unit in _plan(space).unit], dtype=float)
