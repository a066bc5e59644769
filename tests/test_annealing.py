import numpy as np

from bench.registry import Registry
from bench.space import to_unit
from bench.trial import Result


def test_sa_moves_to_improvements_never_to_failures_and_cools_down():
    registry = Registry()
    problem = registry.problem("synthetic/branin").create()
    sa = registry.optimizer("sa").create(problem, problem.objectives, seed=0, budget=50)
    [first] = sa.ask(1)
    sa.tell([first], [Result({"value": 10.0}, cost=1.0)])
    [failed] = sa.ask(1)
    sa.tell([failed], [Result.failure("boom", 0.1)])
    centre = to_unit(problem.space, first.config)
    neighbours = sa.ask(20)  # still around the first point: the failure was not accepted
    assert np.mean([np.linalg.norm(to_unit(problem.space, t.config) - centre) for t in neighbours]) < 0.6
    better = neighbours[0]
    sa.tell(neighbours, [Result({"value": 1.0 if t is better else 50.0}, cost=1.0) for t in neighbours])
    assert sa.incumbent()[0][0] is better
    early = np.mean([np.linalg.norm(to_unit(problem.space, t.config) - to_unit(problem.space, better.config))
                     for t in sa.ask(30)])
    for _ in range(40):  # late in the budget the steps are small
        [t] = sa.ask(1)
        sa.tell([t], [Result({"value": 100.0}, cost=1.0)])
    late_centre = to_unit(problem.space, sa.incumbent()[0][0].config)
    late = np.mean([np.linalg.norm(to_unit(problem.space, t.config) - late_centre) for t in sa.ask(30)])
    assert late < early / 3
