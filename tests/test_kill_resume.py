"""Issue 14's end-to-end check: `bench run` on a table problem, SIGKILLed at a random moment of every
registered optimizer's run and resumed with `--resume`, stores exactly the trials of an uninterrupted run.

Table lookups take about a millisecond, which would end most runs between two commits (trials are committed
every half second of work); a test plugin therefore serves the same table (and hartmann6, for the multi-fidelity
optimizers, until a table has learning curves) 40 ms slower per trial. Each group runs in one `bench run`
command, so a kill lands in whichever optimizer's run is going, and the next launch resumes it and goes on.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from conftest import checkout_registry, install_plugin, query_store

pytestmark = pytest.mark.slow

SLOWED = """
    import time

    from bench.hookspecs import ProblemSpec, hookimpl
    from bench.problem import Problem


    class Slowed(Problem):
        \"\"\"A registered problem in table mode (or its only mode), 40 ms slower per trial.\"\"\"

        def __init__(self, mode, inner, inner_mode=None):
            super().__init__(mode)
            from bench.registry import Registry

            self.inner = Registry().problem(inner).create(inner_mode)
            self.space, self.objectives = self.inner.space, self.inner.objectives
            self.fidelity, self.default_objectives = self.inner.fidelity, self.inner.default_objectives

        def evaluate(self, config, fidelity, seed):
            time.sleep(0.04)
            return self.inner.evaluate(config, fidelity, seed)

        def provenance(self):
            return self.inner.provenance()


    @hookimpl
    def bench_problems():
        return [ProblemSpec("test/slow-llama-1b", "the 1B table, slowed", "bench_test_slowed:Slowed",
                            ("hellaswag_acc", "hellaswag_acc_norm", "mmlu_acc"),
                            kwargs={"inner": "lora-hpo/llama-3.2-1b-alpaca", "inner_mode": "table"}),
                ProblemSpec("test/slow-hartmann6", "hartmann6, slowed", "bench_test_slowed:Slowed", ("value",),
                            multi_fidelity=True, kwargs={"inner": "synthetic/hartmann6"})]
"""

# (problem, options, budget, optimizers): GP-based optimizers spend a second or more per suggestion, so they
# commit every trial at a smaller budget.
GROUPS = {
    "single": ("test/slow-llama-1b", [], 40, ["random", "grid", "lhs", "sa", "cma", "de", "pso", "oneplusone", "ngopt",
                                               "soo", "optuna-tpe", "optuna-cmaes", "smac-rf"]),
    "model-based": ("test/slow-llama-1b", [], 20, ["bo-gp", "optuna-gp", "smac-gp", "bamsoo"]),
    "multi-objective": ("test/slow-llama-1b", ["--objective", "hellaswag_acc", "--objective", "mmlu_acc"], 40,
                        ["nsga2", "nsga3", "moead", "smsemoa", "optuna-nsga2", "optuna-nsga3"]),
    "multi-fidelity": ("test/slow-hartmann6", [], 6, ["hyperband", "asha", "smac-hyperband"]),
}


def test_the_groups_cover_every_registered_optimizer_but_the_nas_search():
    registry = checkout_registry()
    covered = {name for *_, optimizers in GROUPS.values() for name in optimizers}
    genotype = {n for n in registry.optimizers if registry.optimizer(n).capabilities.genotype is not None}
    assert covered == set(registry.optimizers) - genotype and genotype == {"nsga2-nas"}


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_optimizer_killed_at_a_random_moment_and_resumed_equals_an_uninterrupted_run(tmp_path, group):
    problem, options, budget, optimizers = GROUPS[group]
    env = install_plugin(tmp_path / "site", "slowed", SLOWED)
    command = [sys.executable, "-m", "bench", "run", problem, *options,
               *[a for name in optimizers for a in ("-o", name)], "--budget", str(budget), "--store"]
    clean, store = tmp_path / "clean.sqlite", tmp_path / "killed.sqlite"
    seconds = _wall_seconds(command, clean, env)
    rng = random.Random(group)
    killed: dict[str, int] = {}  # optimizer -> trials stored when its run was killed unfinished
    for _ in range(len(optimizers) + 3):
        proc = subprocess.Popen([*command, str(store), "--resume"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        plan = None  # (run id, optimizer, when to kill it)
        while proc.poll() is None:
            running = [row for row in _runs(store) if row[2] == "running" and row[1] not in killed]
            if running:
                run_id, name, *_ = running[-1]
                if plan is None or plan[0] != run_id:  # a random moment of this run, as long as it took uninterrupted
                    plan = (run_id, name, time.time() + rng.uniform(0.15, 0.75) * seconds[name])
                if time.time() >= plan[2]:
                    proc.kill()
                    proc.wait()
                    [(_, _, status, stored)] = [row for row in _runs(store) if row[0] == run_id]
                    if status == "running":
                        killed[name] = stored
            time.sleep(0.01)
        _, err = proc.communicate()
        if proc.returncode == 0:
            break
        assert proc.returncode == -9, err
    assert sorted(killed) == sorted(optimizers), f"no kill landed mid-run for {set(optimizers) - set(killed)}"
    assert [row[2] for row in _runs(store)] == ["complete"] * len(optimizers)
    assert _trials(store) == _trials(clean)
    print(f"{group}: killed with {killed} trials stored")


def _wall_seconds(command, store, env) -> dict[str, float]:
    """Run ``command`` into ``store`` uninterrupted, watching it: each optimizer's run's wall seconds."""
    proc = subprocess.Popen([*command, str(store)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    while proc.poll() is None:
        now = time.time()
        for _, name, status, _ in _runs(store):
            started.setdefault(name, now)
            if status == "complete":
                ended.setdefault(name, now)
        time.sleep(0.01)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    for _, name, _, _ in _runs(store):
        started.setdefault(name, time.time())
        ended.setdefault(name, time.time())
    return {name: ended[name] - started[name] for name in started}


def _runs(path) -> list[tuple]:
    return query_store(path, "SELECT r.id, r.optimizer, r.status, (SELECT COUNT(*) FROM trials t WHERE t.run_id = r.id)"
                        " FROM runs r ORDER BY r.id")


def _trials(path) -> list[tuple]:
    """Every stored trial with its run's optimizer, everything the run found and when (simulated)."""
    return query_store(path, "SELECT r.optimizer, t.number, t.config, t.objectives, t.fidelity, t.info, t.status, t.error,"
                        " t.cost, t.source, t.worker, t.start, t.end FROM trials t JOIN runs r ON r.id = t.run_id"
                        " ORDER BY r.optimizer, t.number")
