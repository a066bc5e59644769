"""bo-gp on BoTorch: the Latin hypercube start, the model's data (failures priced, one thread), the noisy
acquisition where the problem is noisy or trials are pending, a used-up discrete space, the same trials in
another process."""

import json
import textwrap

import numpy as np
import pytest
import torch
from ConfigSpace import Categorical, ConfigurationSpace, Integer

import bench_botorch.gp as gp
from bench.problem import Objective
from bench.space import to_unit
from bench.trial import Result
from conftest import checkout_registry, outputs_under_two_hash_seeds

REGISTRY = checkout_registry()


def branin_bo(seed=0, budget=14):
    problem = REGISTRY.problem("synthetic/branin").create()
    return problem, REGISTRY.optimizer("bo-gp").create(problem, problem.objectives, seed=seed, budget=budget)


def step(problem, optimizer, result=None):
    [trial] = optimizer.ask(1)
    optimizer.tell([trial], [result or problem.evaluate(trial.config, None, 0)])
    return trial


@pytest.fixture
def fits(monkeypatch):
    """Every GP fit's data and torch's thread count during it."""
    seen = []

    def spy(x, y, start=None, noise_free=False):
        seen.append({"x": x, "y": y, "threads": torch.get_num_threads(), "noise_free": noise_free})
        return fit(x, y, start, noise_free=noise_free)

    fit = gp.fit_gp
    monkeypatch.setattr(gp, "fit_gp", spy)
    return seen


def test_ten_latin_hypercube_points_then_the_gp(fits):
    problem, optimizer = branin_bo()
    trials = [step(problem, optimizer) for _ in range(11)]
    cells = np.floor(np.array([to_unit(problem.space, t.config) for t in trials[:10]]) * 10)
    assert all(sorted(column) == list(range(10)) for column in cells.T)  # one point in each tenth, per axis
    assert len(fits) == 1 and len(fits[0]["x"]) == 10
    assert fits[0]["noise_free"]  # branin is deterministic
    assert trials[10].config not in [t.config for t in trials[:10]]


def test_the_model_fixes_its_noise_near_zero_only_where_the_problem_is_noise_free():
    from gpytorch.kernels import MaternKernel
    from gpytorch.likelihoods import FixedNoiseGaussianLikelihood

    x = np.random.default_rng(0).random((12, 3))
    y = np.sin(6 * x).sum(axis=1) + 10.0
    exact, learned = gp.fit_gp(x, y, noise_free=True), gp.fit_gp(x, y)
    assert isinstance(exact.likelihood, FixedNoiseGaussianLikelihood)
    assert torch.allclose(exact.likelihood.noise, torch.tensor(gp.NOISE_FREE_VARIANCE, dtype=torch.double))
    assert not isinstance(learned.likelihood, FixedNoiseGaussianLikelihood)
    assert isinstance(exact.covar_module.base_kernel, MaternKernel) and exact.covar_module.base_kernel.nu == 2.5


def test_a_suggestion_runs_on_one_thread_and_restores_the_count(fits):
    problem, optimizer = branin_bo()
    torch.set_num_threads(2)
    for _ in range(11):
        step(problem, optimizer)
    assert [f["threads"] for f in fits] == [1] and torch.get_num_threads() == 2


def test_failures_are_priced_at_the_worst_loss_seen(fits):
    problem, optimizer = branin_bo()
    for i in range(10):
        step(problem, optimizer, Result.failure("boom", 1.0) if i in (2, 5) else None)
    step(problem, optimizer)
    y = fits[0]["y"]  # negated losses: BoTorch maximizes
    assert y[2] == y[5] == min(y[i] for i in range(10) if i not in (2, 5))


@pytest.mark.parametrize(("deterministic", "pending", "noisy"),
                         [(True, 0, False), (False, 0, True), (True, 1, True)])
def test_noisy_log_ei_where_observations_are_noisy_or_trials_pending(monkeypatch, deterministic, pending, noisy):
    built = []
    for name in ("LogExpectedImprovement", "qLogNoisyExpectedImprovement"):
        original = getattr(gp, name)
        monkeypatch.setattr(gp, name, lambda *a, _o=original, _n=name, **k: built.append(_n) or _o(*a, **k))
    problem = REGISTRY.problem("synthetic/branin").create()
    optimizer = gp.GPBO(problem.space, problem.objectives, seed=0, deterministic=deterministic)
    for _ in range(10):
        step(problem, optimizer)
    waiting = optimizer.ask(pending)
    built.clear()
    optimizer.ask(1)
    assert built == ["qLogNoisyExpectedImprovement" if noisy else "LogExpectedImprovement"]
    assert len(waiting) == pending


def test_a_table_with_repeated_measurements_makes_bo_gp_noise_aware():
    problem = REGISTRY.problem("lora-hpo/llama-3.2-1b-alpaca").create("table")
    optimizer = REGISTRY.optimizer("bo-gp").create(problem, problem.select_objectives(), seed=0)
    assert problem.deterministic is False  # repeated measurements differ
    assert optimizer.deterministic is False


def test_a_discrete_space_is_searched_without_repeats_until_used_up():
    space = ConfigurationSpace({"a": Categorical("a", ["x", "y", "z"]), "b": Integer("b", (1, 6))})
    optimizer = gp.GPBO(space, [Objective("loss", "min")], seed=0)
    seen = []
    while trials := optimizer.ask(1):
        config = trials[0].config
        assert len(seen) < 10 or config not in seen  # the design may repeat a cell; the GP never does
        seen.append(config)
        optimizer.tell(trials, [Result({"loss": (config["b"] - 4) ** 2 + (config["a"] == "y")}, 1.0)])
        assert len(seen) <= 28
    assert len({json.dumps(c, sort_keys=True) for c in seen}) == 18


def test_same_seed_gives_the_same_trials_in_another_process():
    script = textwrap.dedent("""
        import json, sys
        sys.path.insert(0, "tests")
        from conftest import checkout_registry
        from bench.testing import Mixed
        problem = Mixed()
        optimizer = checkout_registry().optimizer("bo-gp").create(problem, problem.select_objectives(("loss",)),
                                                                   seed=5, budget=14)
        out = []
        for _ in range(13):
            [trial] = optimizer.ask(1)
            out.append(trial.config)
            optimizer.tell([trial], [problem.evaluate_trial(trial, 5)])
        print(json.dumps(out))
    """)
    first, second = outputs_under_two_hash_seeds(script)
    assert first == second and len(first) == 13
