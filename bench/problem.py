"""The Problem contract: a search space, objectives, an optional fidelity, and ``evaluate``.

Template method, as pymoo's ``Problem`` and CARP-S's objective functions: the subclass computes in
``evaluate``; the base class's ``evaluate_trial`` checks what goes in (the configuration and fidelity an
optimizer proposed) and what comes out (cost, objectives), enforces a time limit, and turns any failure into
a failed Result, so a run stores it and goes on.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from ConfigSpace import ConfigurationSpace

from bench.space import Fidelity, InvalidConfiguration, check
from bench.trial import Result, Status, Trial


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

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "direction": self.direction, "bounds": self.bounds, "optimum": self.optimum}

    @classmethod
    def from_dict(cls, described: dict[str, Any]) -> Objective:
        """The objective a run card recorded with ``describe``."""
        bounds = described.get("bounds")
        return cls(described["name"], described["direction"], tuple(bounds) if bounds else None,
                   described.get("optimum"))


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
    # A table build's design kinds of the problem's own, beside sobol (kind -> what it draws); see ``design``.
    designs: ClassVar[dict[str, str]] = {}
    # Numbers a table row keeps beside the objectives (column -> what it is), read from each learning-curve point,
    # or from the result's extra where there is no curve.
    table_columns: ClassVar[dict[str, str]] = {}
    # Early signals a table build correlates with the objective they stand for (column -> objective): the column's
    # value against the objective at the top level, over the table's trials (the manifest's signal_correlation).
    table_signals: ClassVar[dict[str, str]] = {}
    # The encoding a table's surrogates read (bench.tables.Encoding); None: the configuration in the unit cube.
    encoding = None

    def __init__(self, mode: str) -> None:
        self.mode = mode

    @abstractmethod
    def evaluate(self, config: dict[str, Any], fidelity: float | None, seed: int) -> Result:
        """Evaluate one configuration; raise or return a failed Result on failure."""

    def design(self, kind: str, points: int) -> list[dict[str, Any]]:
        """``points`` configurations of the design ``kind`` (one of ``designs``), the same on every call: what a
        table of a space no Sobol design covers well measures (a genotype space, the region a search visits)."""
        raise NotImplementedError(f"{type(self).__name__} declares no design {kind!r}")

    def evaluate_trial(self, trial: Trial, seed: int, timeout: float | None = None) -> Result:
        """Evaluate one proposed trial, as a run does: an exception (out of memory included) becomes a failed
        Result, and so does a configuration or fidelity outside the problem's space: never evaluated, stored
        and told as the optimizer's failure. With ``timeout``, an evaluation still running after that many
        seconds is stopped, and one whose result costs more (a table row's measured cost, say) is cut there:
        both are TIMEOUT."""
        fidelity = trial.fidelity
        started = time.perf_counter()
        try:
            check(self.space, trial.config)
            if self.fidelity is not None:
                fidelity = self.fidelity.check(self.fidelity.max if fidelity is None else fidelity)
        except InvalidConfiguration as exc:
            return Result.failure(f"the optimizer proposed an {exc}" if str(exc).startswith("invalid") else
                                  f"the optimizer proposed a fidelity outside the problem's: {exc}", 0.0,
                                  fidelity=fidelity)
        try:
            with deadline(timeout):
                result = self.evaluate(trial.config, fidelity, seed)
        except Exception as exc:  # noqa: BLE001 - failures are data
            status = Status.TIMEOUT if isinstance(exc, TimeoutError) else Status.FAILED
            error = (f"TrialTimeout: the trial ran past the {timeout:g} s limit" if isinstance(exc, TrialTimeout)
                     else f"{type(exc).__name__}: {exc}")
            return Result.failure(error, time.perf_counter() - started, status, fidelity=fidelity)
        if result.fidelity is None and fidelity is not None:
            result = replace(result, fidelity=fidelity)
        result = self.checked(result)
        if timeout is not None and result.cost > timeout:
            return Result.failure(f"TrialTimeout: the trial costs {result.cost:g} s, over the {timeout:g} s limit",
                                  timeout, Status.TIMEOUT, source=result.source, fidelity=result.fidelity,
                                  table_sha256=result.table_sha256)
        return result

    def checked(self, result: Result) -> Result:
        """A result as the store may hold it: a cost that is not finite seconds >= 0, or objectives other than
        the declared ones, make it failed; a non-finite objective makes it diverged; a value outside an
        objective's declared bounds stays but is flagged (``extra["out_of_bounds"]``), since bounds normalise,
        not forbid."""
        if not (isinstance(result.cost, (int, float)) and math.isfinite(result.cost) and result.cost >= 0):
            return replace(result, status=Status.FAILED, cost=0.0, objectives={},
                           error=f"the problem returned cost {result.cost!r}; a cost is finite seconds >= 0")
        if not result.ok:
            return result
        declared = [o.name for o in self.objectives]
        if missing := [name for name in declared if name not in result.objectives]:
            return replace(result, status=Status.FAILED, error=f"result lacks objective(s) {missing}")
        if unknown := sorted(set(result.objectives) - set(declared)):
            return replace(result, status=Status.FAILED, objectives={},
                           error=f"result has undeclared objective(s) {unknown}; the problem declares {declared}")
        if odd := {k: v for k, v in result.objectives.items() if isinstance(v, bool) or not isinstance(v, (int, float))}:
            return replace(result, status=Status.FAILED, objectives={},
                           error=f"objective(s) that are not numbers: {odd}")
        if bad := {k: v for k, v in result.objectives.items() if not math.isfinite(v)}:
            return replace(result, status=Status.DIVERGED, error=f"non-finite objective(s) {bad}")
        outside = {o.name: result.objectives[o.name] for o in self.objectives
                   if o.bounds and not o.bounds[0] <= result.objectives[o.name] <= o.bounds[1]}
        return replace(result, extra={**result.extra, "out_of_bounds": outside}) if outside else result

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


class TrialTimeout(TimeoutError):
    """Raised into an evaluation that ran past the run's trial timeout."""


@contextmanager
def deadline(seconds: float | None):
    """Raise TrialTimeout (a class, no message) into the body once it has run ``seconds``: by SIGALRM in the main thread (which also
    ends a sleep or a blocking read), else asynchronously into the calling thread (a Dask worker's), where it
    lands at the next Python bytecode. A long call into C ends before the exception does."""
    if seconds is None:
        yield
        return
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        def alarm(signum, frame):
            raise TrialTimeout

        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return
    import ctypes

    target, lock, done = threading.get_ident(), threading.Lock(), []

    def expire():
        with lock:
            if not done:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(TrialTimeout))

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            done.append(True)
        timer.cancel()
