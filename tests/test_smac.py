"""The SMAC adapters: smac-gp's Latin hypercube start, failures priced for the model, the forest on one job,
the same trials in another process, a used-up space, nothing written outside a temporary folder."""

import os
import textwrap

import numpy as np
from ConfigSpace import Categorical, ConfigurationSpace, Integer

from bench.problem import Objective
from bench.registry import Registry
from bench.space import Fidelity, to_unit
from bench.trial import Result, Status
from conftest import outputs_under_two_hash_seeds

REGISTRY = Registry()


def test_smac_gp_starts_with_ten_latin_hypercube_points_then_the_gp():
    problem = REGISTRY.problem("synthetic/branin").create()
    optimizer = REGISTRY.optimizer("smac-gp").create(problem, problem.objectives, seed=0, budget=12)
    trials = []
    for _ in range(11):
        [trial] = optimizer.ask(1)
        trials.append(trial)
        optimizer.tell([trial], [problem.evaluate(trial.config, None, 0)])
    cells = np.floor(np.array([to_unit(problem.space, t.config) for t in trials[:10]]) * 10)
    assert all(sorted(column) == list(range(10)) for column in cells.T)  # one point in each tenth, per axis
    assert trials[10].config not in [t.config for t in trials[:10]]


def test_failures_before_any_success_are_told_at_the_worst_success():
    problem = REGISTRY.problem("synthetic/branin").create()
    optimizer = REGISTRY.optimizer("smac-rf").create(problem, problem.objectives, seed=0, budget=10)
    trials = optimizer.ask(4)
    results = [Result.failure("boom", 1.0), Result.failure("nan", 1.0, status=Status.DIVERGED),
               Result({"value": 3.0}, 1.0), Result({"value": 7.0}, 1.0)]
    optimizer.tell(trials[:2], results[:2])
    assert optimizer._smac.runhistory.finished == 0  # no finite price yet: SMAC still sees them running
    optimizer.tell(trials[2:], results[2:])
    costs = sorted(value.cost for value in optimizer._smac.runhistory.values())
    assert costs == [3.0, 7.0, 7.0, 7.0]


def test_the_random_forests_predict_on_one_job():
    from bench.testing import Mixed

    problem = Mixed()
    for name in ("smac-rf", "smac-hyperband"):
        optimizer = REGISTRY.optimizer(name).create(problem, problem.select_objectives(("loss",)), seed=0, budget=10)
        assert optimizer._smac._model._rf_opts["n_jobs"] == 1  # the model SMAC fits and predicts with is ours


def test_same_seed_gives_the_same_trials_in_another_process():
    """SMAC's local search orders its start points by string hashing unless the adapter sorts them."""
    script = textwrap.dedent("""
        import json, sys
        sys.path.insert(0, "tests")
        from bench.testing import Mixed
        from bench.registry import Registry
        problem = Mixed()
        out = []
        for name in ("smac-rf", "smac-hyperband"):
            optimizer = Registry().optimizer(name).create(problem, problem.select_objectives(("loss",)), seed=5,
                                                          budget=8)
            for _ in range(10):
                [trial] = optimizer.ask(1)
                out.append([trial.config, trial.fidelity])
                optimizer.tell([trial], [problem.evaluate_trial(trial, 5)])
        print(json.dumps(out))
    """)
    first, second = outputs_under_two_hash_seeds(script)
    assert first == second and len(first) == 20


def test_a_used_up_space_gives_no_more_trials(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from bench_smac.adapter import SMACOptimizer

    space = ConfigurationSpace({"a": Categorical("a", ["x", "y", "z"]), "b": Integer("b", (1, 2))})
    optimizer = SMACOptimizer(space, [Objective("loss", "min")], fidelity=Fidelity("epochs", 1, 9), seed=0,
                              budget=20, facade="smac-rf")
    seen = []
    while trials := optimizer.ask(1):
        seen.append(repr(sorted(trials[0].config.items())))
        optimizer.tell(trials, [Result({"loss": float(len(seen))}, 1.0)])
        assert len(seen) <= 6
    assert len(set(seen)) == len(seen) >= 4
    folder = optimizer._tmp.name
    del optimizer
    assert not os.path.exists(folder) and list(tmp_path.iterdir()) == []


def test_smac_hyperband_incumbent_is_the_best_at_the_highest_fidelity():
    from bench.testing import Mixed

    problem = Mixed()
    optimizer = REGISTRY.optimizer("smac-hyperband").create(problem, problem.select_objectives(("loss",)), seed=0,
                                                            budget=5)
    for _ in range(40):  # the first bracket: 27 trials at 1 epoch, 9 at 3, 3 at 9, 1 at 27
        [trial] = optimizer.ask(1)
        optimizer.tell([trial], [problem.evaluate_trial(trial, 0)])
    done = [(t, r) for t, r in optimizer.history if r.ok]
    top = max(t.fidelity for t, _ in done)
    [(best, result)] = optimizer.incumbent()
    assert best.fidelity == top > 3
    assert result.objectives["loss"] == min(r.objectives["loss"] for t, r in done if t.fidelity == top)


def test_a_forest_capped_at_one_leaf_per_row_proposes_the_same_trials(monkeypatch):
    from bench_smac import adapter

    def trials():
        problem = REGISTRY.problem("synthetic/branin").create()
        optimizer = REGISTRY.optimizer("smac-rf").create(problem, problem.objectives, seed=0, budget=30)
        for _ in range(30):
            [trial] = optimizer.ask(1)
            optimizer.tell([trial], [problem.evaluate(trial.config, None, 0)])
        return [t.config for t, _ in optimizer.history], optimizer._smac._model._rf_opts["max_leaf_nodes"]

    capped, leaves = trials()
    monkeypatch.setattr(adapter, "_leaves_at_most_rows", lambda model: None)  # SMAC's 2**20 leaves
    uncapped, default = trials()
    assert capped == uncapped and leaves < 30 and default == 2**20
