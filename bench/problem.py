"""The Problem contract: a search space, objectives, an optional fidelity, and ``evaluate``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ConfigSpace import ConfigurationSpace

from bench.space import Fidelity
from bench.trial import Result


@dataclass(frozen=True)
class Objective:
    """A named objective with its direction; ``bounds`` give the range used to normalise and
    as the hypervolume reference, ``optimum`` the best value where it is known."""

    name: str
    direction: Literal["min", "max"] = "min"
    bounds: tuple[float, float] | None = None
    optimum: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("min", "max"):
            raise ValueError(f"objective {self.name}: direction must be 'min' or 'max'")

    @property
    def sign(self) -> int:
        """Multiply by this to turn the objective into one to minimise."""
        return 1 if self.direction == "min" else -1

    def best(self, values):
        return min(values) if self.direction == "min" else max(values)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "direction": self.direction, "bounds": self.bounds, "optimum": self.optimum}


class Problem(ABC):
    """A black box from configuration (and fidelity, seed) to a Result.

    Subclasses set ``space``, ``objectives`` and, if they have one, ``fidelity``; the same
    class serves every mode it declares, chosen when it is created.
    """

    space: ConfigurationSpace
    objectives: tuple[Objective, ...]
    fidelity: Fidelity | None = None
    default_objectives: tuple[str, ...] | None = None  # what a run optimizes unless told; None: all
    deterministic: ClassVar[bool] = True  # same config, fidelity and seed give the same result

    def __init__(self, mode: str) -> None:
        self.mode = mode

    @abstractmethod
    def evaluate(self, config: dict[str, Any], fidelity: float | None, seed: int) -> Result:
        """Evaluate one configuration; raise or return a failed Result on failure."""

    def select_objectives(self, names: tuple[str, ...] | None = None) -> tuple[Objective, ...]:
        """The objectives a run optimizes: ``names``, else the defaults, else all of them."""
        by_name = {o.name: o for o in self.objectives}
        names = names or self.default_objectives or tuple(by_name)
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f"unknown objective {unknown[0]!r}; this problem has {', '.join(by_name)}")
        return tuple(by_name[n] for n in names)

    def provenance(self) -> dict[str, Any]:
        """What a run card must record to reproduce this problem (tables, models, data)."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "objectives": [o.describe() for o in self.objectives],
            "fidelity": None if self.fidelity is None else vars(self.fidelity),
            "deterministic": self.deterministic,
            **self.provenance(),
        }
