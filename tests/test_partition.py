import pytest
from ConfigSpace import ConfigurationSpace, Float

from bench.problem import Objective, Problem
from bench.registry import Registry
from bench.runner import RunSpec, run
from bench.store import Store
from bench.trial import Result

REGISTRY = Registry()


class Bowl(Problem):
    """f(x, y) = (x - 0.7)^2 + (y - 0.2)^2 on the unit square."""

    space = ConfigurationSpace({"x": Float("x", (0.0, 1.0)), "y": Float("y", (0.0, 1.0))})
    objectives = (Objective("value", "min"),)

    def evaluate(self, config, fidelity, seed):
        return Result({"value": (config["x"] - 0.7) ** 2 + (config["y"] - 0.2) ** 2}, cost=1.0, source="analytic")


def test_soo_evaluates_the_hand_computed_sequence_of_cell_centres(tmp_path):
    """By hand, K=3, split the widest side (the first on ties), h_max = floor(sqrt(n)):
    1. root (1/2, 1/2): 0.13
    sweep 1 (n=1, h<=0): expand the root along x -> (1/6, 1/2): 0.3744, (5/6, 1/2): 0.1078; the middle
       child keeps 0.13
    sweep 2 (n=3, h<=1): depth 1's best is (5/6, 1/2); its cell is 1/3 wide in x, 1 in y: split y ->
       (5/6, 1/6): 0.0189, (5/6, 5/6): 0.4189
    sweep 3 (n=5, h<=2): depth 1's best leaf is the middle cell (0.13): split y -> (1/2, 1/6): 0.0411,
       (1/2, 5/6): 0.4411; depth 2's best is (5/6, 1/6) (0.0189 <= 0.13): its cell is square, split x ->
       (13/18, 1/6): 0.0016, (17/18, 1/6): 0.0609
    """
    store = Store(tmp_path / "soo.sqlite")
    trials = store.trials(run(RunSpec("test/bowl", "soo", 0, 9, "live"), store, REGISTRY, problem=Bowl("live")))
    expected = [(1 / 2, 1 / 2), (1 / 6, 1 / 2), (5 / 6, 1 / 2), (5 / 6, 1 / 6), (5 / 6, 5 / 6),
                (1 / 2, 1 / 6), (1 / 2, 5 / 6), (13 / 18, 1 / 6), (17 / 18, 1 / 6)]
    assert [(t.trial.config["x"], t.trial.config["y"]) for t in trials] == [
        (pytest.approx(x, abs=1e-12), pytest.approx(y, abs=1e-12)) for x, y in expected]
    assert [t.trial.info["depth"] for t in trials] == [0, 1, 1, 2, 2, 2, 2, 3, 3]


def test_soo_does_not_depend_on_the_seed():
    problem = Bowl("live")
    first = REGISTRY.optimizer("soo").create(problem, problem.objectives, seed=0, budget=9).ask(1)
    second = REGISTRY.optimizer("soo").create(problem, problem.objectives, seed=5, budget=9).ask(1)
    assert first[0].config == second[0].config


def test_bamsoo_scores_some_cells_by_the_gp_without_charging_or_storing_them_as_results(tmp_path):
    store = Store(tmp_path / "bamsoo.sqlite")
    trials = store.trials(run(RunSpec("synthetic/hartmann6", "bamsoo", 0, 40, "live"), store, REGISTRY))
    assert len(trials) == 40  # the budget counts evaluations only
    assert all(t.result.source == "analytic" for t in trials)
    scored = [cell for t in trials for cell in t.trial.info.get("gp_scored", [])]
    assert scored, "in 6-D many cells cannot beat the best and are scored by the GP"
    for cell in scored:
        assert cell["loss_lcb"] <= cell["loss_mean"] <= cell["loss_ucb"]
        assert set(cell["config"]) == {f"x{i}" for i in range(1, 7)}
    measured = {tuple(t.trial.config.values()) for t in trials}
    assert not measured & {tuple(c["config"].values()) for c in scored}
