"""The Optuna plugins: the same trials as a user's own Optuna study with that sampler and seed, the same trials
in another process, a space feature the sampler lacks refused before the run."""

import textwrap

import optuna
import pytest
from optuna.trial import TrialState

from bench.optimizer import Unsupported
from bench.runner import RunSpec, run
from bench.space import validate
from bench.store import Store
from bench.trial import Result, Status
from bench_optuna.adapter import make_sampler
from conftest import checkout_registry, outputs_under_two_hash_seeds
from bench.testing import Mixed

REGISTRY = checkout_registry()
SAMPLERS = {"optuna-tpe": "tpe", "optuna-gp": "gp", "optuna-cmaes": "cmaes", "optuna-nsga2": "nsga2",
            "optuna-nsga3": "nsga3"}


def conditional_objective(problem, proposed):
    """Mixed's conditional space written the way an Optuna user would: slope only for relu."""
    def objective(trial):
        config = {"activation": trial.suggest_categorical("activation", ["relu", "gelu", "tanh"]),
                  "layers": trial.suggest_int("layers", 1, 16, log=True),
                  "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True),
                  "rank": trial.suggest_int("rank", 2, 64)}
        if config["activation"] == "relu":
            config["slope"] = trial.suggest_float("slope", 0.0, 0.5)
        proposed.append(validate(problem.space, config))
        return problem.evaluate(proposed[-1], 27, 0).objectives["loss"]  # raises for tanh with many layers
    return objective


def numeric_objective(problem, proposed, names):
    """Mixed without its categorical and condition (activation fixed to relu)."""
    def objective(trial):
        config = {"activation": "relu",
                  "layers": trial.suggest_int("layers", 1, 16, log=True),
                  "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True),
                  "rank": trial.suggest_int("rank", 2, 64),
                  "slope": trial.suggest_float("slope", 0.0, 0.5)}
        proposed.append(validate(problem.space, config))
        values = problem.evaluate(proposed[-1], 27, 0).objectives
        return tuple(values[name] for name in names)
    return objective


@pytest.mark.parametrize("name", SAMPLERS)
def test_the_plugin_proposes_what_an_optuna_study_with_that_sampler_and_seed_does(name):
    """Optuna makes a seeded sampler reproducible in a sequential study; the plugin must not change that (TPE
    and GPSampler: 10 random trials, then their models; CMA-ES from its first trial; NSGA within generation 0)."""
    spec = REGISTRY.optimizer(name)
    caps = spec.capabilities
    problem = Mixed() if caps.conditional else Mixed(conditional=False, categorical=False)
    objectives = problem.select_objectives(("loss",) if caps.single_objective else ("loss", "size"))
    proposed = []
    objective = (conditional_objective(problem, proposed) if caps.conditional
                 else numeric_objective(problem, proposed, [o.name for o in objectives]))
    study = optuna.create_study(sampler=make_sampler(SAMPLERS[name], 3, True), directions=["minimize"] * len(objectives))
    study.optimize(objective, n_trials=14, catch=(RuntimeError,))  # failures (a raise, a NaN): FAIL, it goes on

    optimizer = spec.create(problem, objectives, seed=3, budget=14)
    ours = []
    for _ in range(14):
        [trial] = optimizer.ask(1)
        ours.append(trial.config)
        optimizer.tell([trial], [problem.evaluate_trial(trial, 0)])
    assert ours == proposed


def test_same_seed_gives_the_same_trials_in_another_process():
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, "tests")
        from conftest import checkout_registry
        from bench.testing import Mixed, objectives_for
        registry = checkout_registry()
        out = []
        for name in {list(SAMPLERS)}:
            caps = registry.optimizer(name).capabilities
            problem = Mixed.fitting(caps)
            optimizer = registry.optimizer(name).create(problem, problem.select_objectives(objectives_for(caps)),
                                                        seed=5, budget=14)
            for _ in range(3):
                trials = optimizer.ask(4)
                out.append([t.config for t in trials])
                optimizer.tell(trials, [problem.evaluate_trial(t, 5) for t in trials])
        print(json.dumps(out))
    """)
    first, second = outputs_under_two_hash_seeds(script)
    assert first == second and len(first) == 15


@pytest.mark.parametrize(("name", "feature"), [("optuna-cmaes", "conditional"), ("optuna-gp", "conditional"),
                                               ("optuna-nsga2", "conditional")])
def test_a_space_feature_the_sampler_lacks_is_refused_before_the_run(tmp_path, name, feature):
    store = Store(tmp_path / "r.sqlite")
    spec = RunSpec("test/mixed", name, 0, 5, "live", objectives=("loss", "size") if "nsga" in name else ("loss",))
    with pytest.raises(Unsupported) as refused:
        run(spec, store, REGISTRY, problem=Mixed())
    message = str(refused.value)
    assert "\n" not in message and f"{name} cannot search {feature}" in message and "--json" in message
    assert store.runs() == []


def test_cmaes_refuses_categoricals_too(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    with pytest.raises(Unsupported, match="optuna-cmaes cannot search categorical hyperparameters; choose"):
        run(RunSpec("test/mixed", "optuna-cmaes", 0, 5, "live", objectives=("loss",)), store, REGISTRY,
            problem=Mixed(conditional=False))
    assert store.runs() == []


def test_failures_are_told_as_failed_trials_and_successes_with_their_values():
    problem = Mixed()
    optimizer = REGISTRY.optimizer("optuna-tpe").create(problem, problem.select_objectives(("loss",)), seed=0)
    trials = optimizer.ask(3)
    optimizer.tell(trials, [Result.failure("RuntimeError: boom", 1.0),
                            Result.failure("non-finite objective", 1.0, status=Status.DIVERGED),
                            Result({"loss": 0.25, "size": 3.0}, 1.0)])
    assert [t.state for t in optimizer.study.trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert optimizer.study.trials[2].values == [0.25]
