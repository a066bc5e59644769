"""Trial and Result records: what an optimizer proposes and what an evaluation returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Status(str, Enum):
    OK = "ok"
    FAILED = "failed"  # the evaluation raised (including out of memory)
    TIMEOUT = "timeout"
    DIVERGED = "diverged"  # NaN or exploding loss / objective


# Where a value came from: measured now, computed exactly, measured earlier (a table
# row), or predicted for a configuration the table does not hold.
SOURCES = ("live", "analytic", "table", "nearest", "surrogate")
MEASURED = ("live", "analytic", "table")


@dataclass(eq=False)
class Trial:
    """One proposal. Compared by identity, so an optimizer can key its state on it."""

    config: dict[str, Any]
    fidelity: float | None = None
    info: dict[str, Any] = field(default_factory=dict)  # the optimizer's own notes (bracket, rung, ...)


@dataclass(frozen=True)
class Result:
    objectives: dict[str, float]
    cost: float  # seconds: measured, the table's measured cost, or a problem's declared nominal cost
    status: Status = Status.OK
    error: str | None = None
    source: str = "live"
    fidelity: float | None = None
    table_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # learning curve, peak memory, stderr, ...

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown result source {self.source!r}; one of {SOURCES}")

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def measured(self) -> bool:
        return self.source in MEASURED

    @classmethod
    def failure(cls, error: str, cost: float, status: Status = Status.FAILED, **kwargs: Any) -> Result:
        return cls(objectives={}, cost=cost, status=status, error=error, **kwargs)


@dataclass(frozen=True)
class StoredTrial:
    """A trial as a run records it: its number in proposal order, the result, the worker that ran it and
    its start and end in seconds since the run started."""

    number: int
    trial: Trial
    result: Result
    worker: int
    start: float
    end: float
