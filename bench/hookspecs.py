"""The plugin contract: pluggy markers, the hooks, and the specs they return.

Hooks return specs, not instances. A spec names a lazy factory ("module:attr"), so
listing plugins imports only this light module and the plugins' own ``__init__``:
no numpy, ConfigSpace, torch or optimizer library is loaded until a run creates
the problem or optimizer. Plugins import only from here.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy

PROJECT = "bench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

MODES = ("table", "live")


def load_factory(path: str) -> Any:
    """Import ``module:attr`` on first use; a bad path names itself in the error."""
    module_name, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"cannot load {path!r}: {exc}") from exc


@dataclass(frozen=True)
class Capabilities:
    """What an optimizer can handle; checked against the problem before a run starts."""

    single_objective: bool = True
    multi_objective: bool = False
    multi_fidelity: bool = False
    batch: bool = True  # ask(n) with n > 1 returns n distinct trials
    asynchronous: bool = True  # may be asked while earlier trials are still running
    conditional: bool = True  # conditional hyperparameters (ConfigSpace conditions)
    categorical: bool = True
    genotype: str | None = None  # a problem-specific search: only spaces whose meta["genotype"] is this

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)


@dataclass(frozen=True)
class ProblemSpec:
    """A problem instance ``family/instance`` and how to create it."""

    name: str
    summary: str
    factory: str
    objectives: tuple[str, ...]
    modes: tuple[str, ...] = ("live",)
    multi_fidelity: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)
    # How the published board runs it in table mode (None: not on the board): {"budget": evaluations,
    # "objectives": [[names], ...]}, one entry per variant ([] for the default objectives).
    board: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.modes) - set(MODES)
        if not self.modes or unknown:
            raise ValueError(f"problem {self.name}: modes must be a subset of {MODES}, got {self.modes}")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "objectives": list(self.objectives),
            "modes": list(self.modes),
            "multi_fidelity": self.multi_fidelity,
        }

    def create(self, mode: str | None = None):
        """Build the problem for ``mode`` (default: the first declared mode)."""
        mode = mode or self.modes[0]
        if mode not in self.modes:
            raise ValueError(
                f"problem {self.name} has no {mode!r} mode; use --mode {' or --mode '.join(self.modes)}"
            )
        return load_factory(self.factory)(mode=mode, **self.kwargs)


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer and how to create it for one problem, seed and budget."""

    name: str
    summary: str
    factory: str
    capabilities: Capabilities = Capabilities()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary, "capabilities": self.capabilities.to_dict()}

    def create(self, problem, objectives, *, seed: int, budget: float | None = None):
        return load_factory(self.factory)(
            problem.space,
            objectives,
            fidelity=problem.fidelity,
            seed=seed,
            budget=budget,
            deterministic=problem.deterministic,
            **self.kwargs,
        )


@hookspec
def bench_problems() -> list[ProblemSpec]:
    """Problem instances this plugin provides."""


@hookspec
def bench_optimizers() -> list[OptimizerSpec]:
    """Optimizers this plugin provides."""
