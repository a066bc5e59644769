"""Optuna's samplers behind the ask/tell contract: optuna-tpe, optuna-gp, optuna-cmaes, optuna-nsga2, optuna-nsga3.

Each keeps Optuna's defaults, seeded, so a user's own study with that sampler and seed is what the board runs.
Only TPE samples conditional spaces (define-by-run); the others model a fixed space and are refused one."""

from bench.hookspecs import Capabilities, OptimizerSpec, hookimpl

_FACTORY = "bench_optuna.adapter:OptunaOptimizer"


@hookimpl
def bench_optimizers():
    return [
        OptimizerSpec("optuna-tpe", "Optuna TPESampler: tree-structured Parzen estimator after 10 random trials",
                      _FACTORY, Capabilities(multi_objective=True), {"sampler": "tpe"}, ("optuna",)),
        OptimizerSpec("optuna-gp", "Optuna GPSampler: GP and log expected improvement after 10 random trials",
                      _FACTORY, Capabilities(conditional=False), {"sampler": "gp"}, ("optuna", "torch")),
        OptimizerSpec("optuna-cmaes", "Optuna CmaEsSampler: CMA-ES on the numeric hyperparameters", _FACTORY,
                      Capabilities(conditional=False, categorical=False), {"sampler": "cmaes"}, ("optuna", "cmaes")),
        OptimizerSpec("optuna-nsga2", "Optuna NSGAIISampler: NSGA-II, population 50 (multi-objective)", _FACTORY,
                      Capabilities(single_objective=False, multi_objective=True, conditional=False),
                      {"sampler": "nsga2"}, ("optuna",)),
        OptimizerSpec("optuna-nsga3", "Optuna NSGAIIISampler: NSGA-III, population 50 (multi-objective)", _FACTORY,
                      Capabilities(single_objective=False, multi_objective=True, conditional=False),
                      {"sampler": "nsga3"}, ("optuna",)),
    ]
