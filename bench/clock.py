"""Simulated wall clock: N asynchronous workers, each busy for its trial's cost.

Evaluation itself is instantaneous (a table lookup, or a live evaluation whose measured
cost is replayed); the clock decides when each result *would* have arrived, so the
optimizer is told results in the order parallel workers would have produced them and
runs compare at equal simulated time. Ties break by start order, so runs are exact.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    worker: int
    start: float
    end: float
    payload: Any


class SimulatedClock:
    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.now = 0.0
        self._free = list(range(workers))  # a heap: the lowest free worker id starts next
        self._running: list[tuple[float, int, Event]] = []
        self._started = 0

    @property
    def has_free_worker(self) -> bool:
        return bool(self._free)

    @property
    def pending(self) -> int:
        return len(self._running)

    def start(self, duration: float, payload: Any) -> Event:
        """Occupy the next free worker from now for ``duration`` seconds."""
        if duration < 0:
            raise ValueError(f"negative duration {duration}")
        worker = heapq.heappop(self._free)
        event = Event(worker, self.now, self.now + duration, payload)
        heapq.heappush(self._running, (event.end, self._started, event))
        self._started += 1
        return event

    def next(self) -> Event:
        """Advance to the earliest completion and free its worker."""
        _, _, event = heapq.heappop(self._running)
        self.now = event.end
        heapq.heappush(self._free, event.worker)
        return event
