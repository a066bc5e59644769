"""Adapters to SMAC3: smac-gp (GP + EI), smac-rf, smac-hyperband.

Several asks before a tell give distinct configurations (SMAC tracks pending trials), so all
three take batches and asynchronous results."""

from bench.hookspecs import Capabilities, OptimizerSpec, hookimpl

_FACTORY = "bench_smac.adapter:SMACOptimizer"


@hookimpl
def bench_optimizers():
    return [
        OptimizerSpec("smac-gp", "SMAC's BO with a Gaussian process and expected improvement after 10 Latin "
                      "hypercube points (BlackBoxFacade)", _FACTORY, Capabilities(), {"facade": "smac-gp"}, ("smac",),
                      board=False),  # 1-3 s a suggestion, 4x bo-gp: more than half the board's CPU time alone
        OptimizerSpec("smac-rf", "SMAC with a random forest (HyperparameterOptimizationFacade)", _FACTORY,
                      Capabilities(), {"facade": "smac-rf"}, ("smac",)),
        OptimizerSpec("smac-hyperband", "SMAC multi-fidelity: random forest + Hyperband (eta=3) on the fidelity",
                      _FACTORY, Capabilities(multi_fidelity=True), {"facade": "smac-hyperband"}, ("smac",)),
    ]
