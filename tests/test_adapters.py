"""SMAC Hyperband fidelities, and refusals of unsupported pairs (nevergrad conversions: test_nevergrad.py)."""

import pytest

from bench.registry import Registry
from conftest import bench_cli

REGISTRY = Registry()


def test_smac_hyperband_uses_several_fidelities_inside_the_range():
    problem = REGISTRY.problem("synthetic/hartmann6").create()
    optimizer = REGISTRY.optimizer("smac-hyperband").create(problem, problem.objectives, seed=0, budget=20)
    fidelities = []
    for _ in range(120):  # Hyperband's first bracket: 81 at 1 step, 27 at 4, 9 at 11, ...
        [trial] = optimizer.ask(1)
        fidelities.append(trial.fidelity)
        optimizer.tell([trial], [problem.evaluate(trial.config, trial.fidelity, 0)])
    assert len(set(fidelities)) >= 3 and all(1 <= f <= 100 and isinstance(f, int) for f in fidelities)


@pytest.mark.parametrize("args, fragment", [
    (["synthetic/branin", "--optimizer", "nsga2"], "multi-objective only"),
    (["synthetic/zdt1", "--optimizer", "cma"], "single-objective; this run has 2 objectives"),
    (["synthetic/branin", "--optimizer", "hyperband"], "multi-fidelity; this problem has no fidelity"),
])
def test_unsupported_pairs_are_refused_before_running(tmp_path, args, fragment):
    store = tmp_path / "r.sqlite"
    out = bench_cli("run", *args, "--store", str(store))
    assert out.returncode != 0 and fragment in out.stderr and not store.exists()
