import pytest

from bench.clock import SimulatedClock


def test_three_workers_hand_computed():
    """Costs 5, 2, 4, 1, 3, 1 on three workers, each new trial starting on the first free worker.

    t=0: w0 takes A (ends 5), w1 B (ends 2), w2 C (ends 4)
    t=2: B ends on w1, which takes D (ends 3)
    t=3: D ends on w1, which takes E (ends 6)
    t=4: C ends on w2, which takes F (ends 5)
    t=5: A (w0, started first) and F (w2) both end: A first, by start order
    t=6: E ends.
    """
    clock = SimulatedClock(3)
    costs = iter([("A", 5), ("B", 2), ("C", 4), ("D", 1), ("E", 3), ("F", 1)])
    started, finished = {}, []
    for _ in range(3):
        name, cost = next(costs)
        started[name] = clock.start(cost, name)
    while clock.pending:
        event = clock.next()
        finished.append((event.payload, event.worker, event.start, event.end))
        nxt = next(costs, None)
        if nxt:
            started[nxt[0]] = clock.start(nxt[1], nxt[0])
    assert finished == [
        ("B", 1, 0, 2), ("D", 1, 2, 3), ("C", 2, 0, 4), ("A", 0, 0, 5), ("F", 2, 4, 5), ("E", 1, 3, 6),
    ]
    assert clock.now == 6


def test_one_worker_is_sequential_and_zero_workers_refused():
    clock = SimulatedClock(1)
    clock.start(1.5, "a")
    assert not clock.has_free_worker
    assert clock.next().end == 1.5
    clock.start(2.0, "b")
    assert clock.next().end == 3.5
    with pytest.raises(ValueError):
        SimulatedClock(0)
