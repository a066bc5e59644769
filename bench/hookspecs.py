"""The plugin contract: pluggy markers, the hooks, and the specs they return.

Hooks return specs, not instances. A spec names a lazy factory ("module:attr"), so
listing plugins imports only this light module and the plugins' own ``__init__``:
no numpy, ConfigSpace, torch or optimizer library is loaded until a run creates
the problem or optimizer. A plugin's ``__init__`` imports from here; its implementation modules
from ``bench.plugin``, the whole public plugin API.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy

PROJECT = "bench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

MODES = ("table", "live")
EXECUTORS = ("local", "process", "dask")  # where trials run: bench/executors.py implements each


def load_factory(path: str) -> Any:
    """Import ``module:attr`` on first use; a bad path names itself in the error."""
    module_name, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"cannot load {path!r}: {exc}") from exc


class MissingExtra(ImportError):
    """A plugin needs a library that is not installed; the message names the pip command that installs it."""


def missing(modules: tuple[str, ...]) -> list[str]:
    """The top-level modules of ``modules`` that cannot be imported here, found as the import system would
    (its finders, without importing anything: `bench list` stays light)."""
    return [m for m in modules
            if m not in sys.modules and not any(finder.find_spec(m, None) for finder in sys.meta_path
                                                if hasattr(finder, "find_spec"))]


def require(modules: tuple[str, ...], install: str, what: str) -> None:
    """Raise MissingExtra naming ``what`` needs and ``pip install`` ``install`` unless ``modules`` are installed."""
    if absent := missing(modules):
        raise MissingExtra(f"{what} needs {', '.join(absent)}, not installed here: pip install '{install}'")


class SpecMismatch(ValueError):
    """A plugin's spec says one thing and the class it names does another."""


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
    multi_fidelity: bool | tuple[str, ...] = False  # True: in every mode; else the modes that have a fidelity
    kwargs: dict[str, Any] = field(default_factory=dict)
    # How the published board runs it (None: not on the board): {"budget": evaluations, "objectives": [[names],
    # ...]} (one entry per variant, [] for the default objectives), and optionally "mode": "table" (the default:
    # under every surrogate family the table ships) or another, for analytic problems whose optima are known
    # (the board's sanity section), and "optimizers": the only ones it runs (default: every one that supports it).
    board: dict[str, Any] | None = None
    # The kwargs `bench table build` creates the problem with in live mode, where measuring a table wants more than a
    # run does (e.g. a score at every level of a learning curve); None: ``kwargs``.
    table_build: dict[str, Any] | None = None
    requires: dict[str, tuple[str, ...]] = field(default_factory=dict)  # mode -> modules it needs beyond the core
    install: str = "bench-llm[all]"  # what `pip install` provides them

    def __post_init__(self) -> None:
        unknown = set(self.modes) - set(MODES)
        if not self.modes or unknown:
            raise ValueError(f"problem {self.name}: modes must be a subset of {MODES}, got {self.modes}")
        if not isinstance(self.multi_fidelity, bool) and not set(self.multi_fidelity) <= set(self.modes):
            raise ValueError(f"problem {self.name}: multi_fidelity names modes {self.multi_fidelity} it does not have")

    @property
    def fidelity_modes(self) -> tuple[str, ...]:
        """The modes in which the problem has a fidelity."""
        if isinstance(self.multi_fidelity, bool):
            return self.modes if self.multi_fidelity else ()
        return tuple(self.multi_fidelity)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "objectives": list(self.objectives),
            "modes": list(self.modes),
            "multi_fidelity": bool(self.fidelity_modes),
            "fidelity_modes": list(self.fidelity_modes),
            "unavailable_modes": {mode: f"pip install '{self.install}'" for mode in self.modes
                                  if missing(self.requires.get(mode, ()))},
        }

    def create(self, mode: str | None = None, **options):
        """Build the problem for ``mode`` (default: the first declared mode); ``options`` are a table's
        (``noise``, ``surrogate``), refused for other modes."""
        mode = mode or self.modes[0]
        if mode not in self.modes:
            raise ValueError(
                f"problem {self.name} has no {mode!r} mode; use --mode {' or --mode '.join(self.modes)}"
            )
        if options and mode != "table":
            raise ValueError(f"{' and '.join('--' + o for o in options)}: table mode only; problem {self.name} runs {mode}")
        require(self.requires.get(mode, ()), self.install, f"problem {self.name} in {mode} mode")
        try:
            problem = load_factory(self.factory)(mode=mode, **self.kwargs, **options)
        except TypeError as exc:
            if options and "unexpected keyword" in str(exc):
                raise ValueError(f"problem {self.name} takes no {' or '.join(options)} option ({exc})") from exc
            raise
        names = tuple(o.name for o in problem.objectives)
        if names != tuple(self.objectives):
            raise SpecMismatch(f"problem {self.name}: its spec lists objectives {list(self.objectives)}, the"
                               f" instance has {list(names)}; make the spec say what {self.factory} returns")
        if (problem.fidelity is not None) != (mode in self.fidelity_modes):
            has = "has a fidelity" if problem.fidelity is not None else "has none"
            raise SpecMismatch(f"problem {self.name}: in {mode} mode the instance {has}, its spec's multi_fidelity"
                               f" {self.multi_fidelity!r} says otherwise; make the spec say what {self.factory} does")
        return problem


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer and how to create it for one problem, seed and budget."""

    name: str
    summary: str
    factory: str
    capabilities: Capabilities = Capabilities()
    kwargs: dict[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()  # modules it needs beyond the core
    install: str = "bench-llm[optimizers]"  # what `pip install` provides them
    board: bool = True  # False: left out of the published board's run matrix (still runnable and submittable)

    def describe(self) -> dict[str, Any]:
        absent = missing(self.requires)
        return {"name": self.name, "summary": self.summary, "capabilities": self.capabilities.to_dict(),
                "available": not absent, **({"install": f"pip install '{self.install}'"} if absent else {})}

    def load(self):
        """The optimizer class (or factory); one that declares capabilities other than its spec's is refused
        (the spec is what `bench list` shows and the runner checks, so the two must not disagree)."""
        require(self.requires, self.install, f"optimizer {self.name}")
        factory = load_factory(self.factory)
        declared = getattr(factory, "capabilities", None)
        if isinstance(declared, Capabilities) and declared not in (Capabilities(), self.capabilities):
            differ = {k: v for k, v in declared.to_dict().items() if self.capabilities.to_dict()[k] != v}
            raise SpecMismatch(f"optimizer {self.name}: its class {self.factory} declares {differ}, its spec"
                               f" otherwise; make the spec's capabilities say what the class can do")
        return factory

    def create(self, problem, objectives, *, seed: int, budget: float | None = None):
        factory = self.load()
        optimizer = factory(
            problem.space,
            objectives,
            fidelity=problem.fidelity,
            seed=seed,
            budget=budget,
            deterministic=problem.deterministic,
            **self.kwargs,
        )
        optimizer.capabilities = self.capabilities
        return optimizer


@hookspec
def bench_problems() -> list[ProblemSpec]:
    """Problem instances this plugin provides."""


@hookspec
def bench_optimizers() -> list[OptimizerSpec]:
    """Optimizers this plugin provides."""
