import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from ConfigSpace import ConfigurationSpace, Float

from bench.hookspecs import Capabilities, OptimizerSpec
from bench.optimizer import Optimizer
from bench.problem import Objective, Problem
from bench.registry import Registry
from bench.build import FixedDesign
from bench.runner import OptimizerError, ResumeMismatch, RunSpec, run
from bench.store import Store
from bench.trial import Result, Status, Trial
from conftest import bench_cli, install_plugin, query_store


def stored_trials(path):
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT r.seed, t.number, t.config, t.objectives, t.fidelity, t.info, t.status, t.error, t.cost, t.source,"
            " t.worker, t.start, t.end FROM trials t JOIN runs r ON r.id = t.run_id"
            " ORDER BY r.seed, t.number"
        ).fetchall()


def test_run_stores_every_trial_and_repeats_exactly(tmp_path):
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    for path in (first, second):
        out = bench_cli("run", "synthetic/branin", "--optimizer", "random", "--budget", "30", "--seeds", "0-2",
                        "--store", str(path))
        assert out.returncode == 0, out.stderr
    rows = stored_trials(first)
    assert len(rows) == 90
    assert rows == stored_trials(second)
    assert len({r[2] for r in rows}) == 90  # seeds differ from each other


class Flaky(Problem):
    """Raises on the left third of the space and returns NaN on the right third."""

    space = ConfigurationSpace({"x": Float("x", (0.0, 3.0))})
    objectives = (Objective("loss", "min"),)

    def evaluate(self, config, fidelity, seed):
        if config["x"] < 1:
            raise MemoryError("CUDA out of memory (simulated by the test problem)")
        return Result({"loss": math.nan if config["x"] > 2 else config["x"]}, cost=2.0)


def test_failures_are_stored_and_told_and_the_run_goes_on(store):
    registry = Registry()
    results = Store(store)
    spec = RunSpec("test/flaky", "random", seed=1, budget=40, mode="live")
    run_id = run(spec, results, registry, problem=Flaky("live"))
    trials = results.trials(run_id)
    assert len(trials) == 40
    by_status = {}
    for st in trials:
        by_status.setdefault(st.result.status, []).append(st)
    assert set(by_status) == {Status.OK, Status.FAILED, Status.DIVERGED}
    assert all("out of memory" in st.result.error for st in by_status[Status.FAILED])
    assert all("nan" in st.result.error for st in by_status[Status.DIVERGED])
    assert all(st.result.objectives == {} for st in by_status[Status.FAILED])


def test_budget_in_cost_seconds_stops_proposals(store):
    results = Store(store)
    spec = RunSpec("test/flaky", "lhs", seed=0, budget=50, mode="live", max_cost=21)
    run_id = run(spec, results, Registry(), problem=Flaky("live"))
    trials = results.trials(run_id)
    # Failed trials cost only their (tiny) measured time, ok/diverged ones 2 s: stop once 21 s are spent.
    assert sum(st.result.cost for st in trials[:-1]) < 21 <= sum(st.result.cost for st in trials)


class QuarterFidelity(Optimizer):
    """Always proposes the centre at a quarter of the fidelity."""

    capabilities = Capabilities(multi_fidelity=True)

    def ask(self, n=1):
        return [Trial({f"x{i}": 0.5 for i in range(1, 7)}, fidelity=25) for _ in range(n)]


def test_fidelity_budget_counts_full_fidelity_equivalents(store):
    registry = Registry()
    registry.optimizers["quarter"] = OptimizerSpec("quarter", "", "test_runner:QuarterFidelity",
                                                   Capabilities(multi_fidelity=True))
    results = Store(store)
    run_id = run(RunSpec("synthetic/hartmann6", "quarter", seed=0, budget=3, mode="live"), results, registry)
    trials = results.trials(run_id)
    assert len(trials) == 12  # 12 trials at a quarter of the fidelity = 3 full evaluations
    assert {st.result.fidelity for st in trials} == {25}
    assert trials[0].result.cost == 0.25


SLOW_PLUGIN = """
    import time
    from ConfigSpace import ConfigurationSpace, Float
    from bench.hookspecs import ProblemSpec, hookimpl
    from bench.problem import Objective, Problem
    from bench.trial import Result

    class Slow(Problem):
        space = ConfigurationSpace({"x": Float("x", (0.0, 1.0)), "y": Float("y", (0.0, 1.0))})
        objectives = (Objective("value", "min"),)

        def evaluate(self, config, fidelity, seed):
            time.sleep(0.05)
            return Result({"value": (config["x"] - 0.3) ** 2 + config["y"]}, cost=1.0)

    @hookimpl
    def bench_problems():
        return [ProblemSpec("test/slow", "sleeps 50 ms", "bench_test_slow:Slow", ("value",))]
"""


@pytest.mark.parametrize("workers", [1, 3])
def test_sigkill_then_resume_completes_with_every_trial_once(tmp_path, workers):
    env = install_plugin(tmp_path / "site", "slow", SLOW_PLUGIN)
    store = tmp_path / "killed.sqlite"
    args = ["run", "test/slow", "--optimizer", "random", "--budget", "40", "--seeds", "4",
            "--workers", str(workers), "--store", str(store)]
    proc = subprocess.Popen([sys.executable, "-m", "bench", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.1)
        if store.exists():
            try:
                with sqlite3.connect(store) as db:
                    if db.execute("SELECT COUNT(*) FROM trials").fetchone()[0] >= 10:
                        break
            except sqlite3.OperationalError:
                pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = len(stored_trials(store))
    assert 10 <= killed_at < 40

    out = bench_cli(*args, "--resume", env=env)
    assert out.returncode == 0, out.stderr
    rows = stored_trials(store)
    assert [r[1] for r in rows] == list(range(40))  # every trial exactly once
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*), MIN(status) FROM runs").fetchone() == (1, "complete")

    clean = tmp_path / "clean.sqlite"
    assert bench_cli(*args[:-1], str(clean), env=env).returncode == 0
    assert rows == stored_trials(clean)  # resumed == uninterrupted, bit for bit


def runs_of(path) -> list[str]:
    """The status of each run in the store at ``path`` (none before the store exists)."""
    return [row[0] for row in query_store(path, "SELECT status FROM runs ORDER BY id")]


def test_resume_refuses_an_optimizer_that_proposes_otherwise_or_stops_early(store):
    """Replay must reproduce every stored trial: another proposal, or none where the store holds one, stops the
    resume with ResumeMismatch and leaves the store as it was (the old runner completed such a run, short)."""
    problem = Registry().problem("synthetic/branin").create("live")
    configs = [{"x1": float(i), "x2": 1.0} for i in range(6)]
    spec = RunSpec("synthetic/branin", "design", 0, len(configs), "live")
    results = Store(store)

    def design(configs):
        return FixedDesign(problem.space, problem.objectives, configs)

    def interrupt(told, used):
        if told == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(spec, results, Registry(), problem=problem, optimizer=design(configs), progress=interrupt)
    before = stored_trials(store)
    with pytest.raises(ResumeMismatch, match="trial 2 was"):
        run(spec, results, Registry(), problem=problem, optimizer=design(configs[:2] + configs[3:]), resume=True)
    with pytest.raises(ResumeMismatch, match="stopped after 3 trials"):
        run(spec, results, Registry(), problem=problem, optimizer=design(configs[:3]), resume=True)
    assert stored_trials(store) == before and results.runs()[0]["status"] == "running"
    assert run(spec, results, Registry(), problem=problem, optimizer=design(configs), resume=True) == 1
    assert [st.trial.config for st in results.trials(1)] == configs


def test_resume_of_a_complete_run_adds_nothing(store):
    args = ["run", "synthetic/himmelblau", "--optimizer", "grid", "--budget", "10", "--store", str(store)]
    assert bench_cli(*args).returncode == 0
    again = bench_cli(*args, "--resume")
    assert again.returncode == 0, again.stderr
    assert len(stored_trials(store)) == 10


@pytest.mark.parametrize("args, fragment", [
    (["run", "synthetic/branni", "--optimizer", "random"], "did you mean synthetic/branin"),
    (["run", "synthetic/branin", "--optimizer", "randon"], "did you mean random"),
    (["run", "synthetic/branin", "--optimizer", "random", "--seeds", "3-1"], "seed list"),
    (["run", "synthetic/branin", "--optimizer", "random", "--seeds", "a"], "seed list"),
    (["run", "synthetic/branin", "--optimizer", "random", "--budget", "0"], "budget must be positive"),
    (["run", "synthetic/branin", "--optimizer", "random", "--budget", "inf"], "budget must be positive and finite"),
    (["run", "synthetic/branin", "--optimizer", "random", "--budget", "nan"], "budget must be positive and finite"),
    (["run", "synthetic/branin", "--optimizer", "random", "--max-cost", "inf"], "max cost must be positive and finite"),
    (["run", "synthetic/branin", "--optimizer", "random", "--seeds", "0-100000000"], "more than 10000 seeds"),
    (["run", "synthetic/branin", "--optimizer", "random", "--workers", "0"], "workers must be at least 1"),
    (["run", "synthetic/branin", "--optimizer", "random", "--mode", "table"], "has no 'table' mode"),
    (["run", "synthetic/branin", "--optimizer", "random", "--trial-timeout", "0"], "trial timeout must be positive"),
    (["run", "synthetic/branin", "--optimizer", "random", "--trial-timeout", "inf"], "trial timeout must be positive"),
])
def test_bad_input_is_refused_with_one_line_before_anything_is_written(store, args, fragment):
    out = bench_cli(*args, "--store", str(store))
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert fragment in lines[-1]
    assert len([line for line in lines if line.startswith("Error")]) == 1
    assert not store.exists()


def test_rerunning_a_stored_run_is_refused_until_it_is_deleted(store):
    """A run has one identity (its inputs): the same command again refuses with one line naming --resume and
    `bench runs delete`, changing nothing; --resume returns the complete run; a deleted run can be run again."""
    command = ["run", "synthetic/branin", "--optimizer", "random", "--budget", "5", "--store", str(store)]
    args = [*command, "--seeds", "0-1"]
    assert bench_cli(*args).returncode == 0
    before = stored_trials(store)
    again = bench_cli(*args)
    assert again.returncode != 0
    [line] = [line for line in again.stderr.splitlines() if line.strip()]
    assert "run 1 (synthetic/branin, random, seed 0) is already in" in line
    assert "--resume" in line and "`bench runs delete 1`" in line
    assert bench_cli(*args, "--resume").returncode == 0
    assert stored_trials(store) == before and runs_of(store) == ["complete", "complete"]

    missing = bench_cli("runs", "delete", "1", "7", "--store", str(store))
    assert missing.returncode != 0 and "has no run 7" in missing.stderr
    assert stored_trials(store) == before  # all or nothing
    deleted = bench_cli("runs", "delete", "1", "--store", str(store))
    assert deleted.returncode == 0, deleted.stderr
    assert [row[0] for row in stored_trials(store)] == [1] * 5 and runs_of(store) == ["complete"]
    assert bench_cli(*command, "--seeds", "0").returncode == 0
    assert sorted(stored_trials(store)) == sorted(before)


@pytest.mark.parametrize("command", [["show"], ["export", "out.parquet"], ["runs", "delete", "1"]])
def test_reading_a_store_that_does_not_exist_refuses_and_creates_nothing(tmp_path, command):
    out = bench_cli(*command, "--store", str(tmp_path / "mistyped.sqlite"), cwd=tmp_path)
    assert out.returncode != 0
    assert "no results store at" in out.stderr.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_show_json_and_parquet_export(tmp_path, store):
    assert bench_cli("run", "synthetic/zdt1", "--optimizer", "lhs", "--budget", "12", "--seeds", "0,3",
                     "--store", str(store)).returncode == 0
    runs = json.loads(bench_cli("show", "--store", str(store), "--json").stdout)
    assert [(r["seed"], r["trials"], r["failed"]) for r in runs] == [(0, 12, 0), (3, 12, 0)]
    assert set(runs[0]["best"]) == {"f1", "f2"}
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out = tmp_path / "trials.parquet"
    assert bench_cli("export", str(out), "--store", str(store)).returncode == 0
    table = pq.read_table(out)
    assert table.num_rows == 24
    assert {"objective.f1", "objective.f2", "config.x01", "seed", "cost"} <= set(table.column_names)
    assert min(table.column("objective.f1").to_pylist()) == min(r["best"]["f1"] for r in runs)
    front = runs[0]["pareto_front"]  # two optimized objectives: show has the non-dominated trials
    values = table.filter(pc.equal(table.column("seed"), 0)).select(["objective.f1", "objective.f2"]).to_pylist()
    points = [(v["objective.f1"], v["objective.f2"]) for v in values]
    expected = sorted(p for p in points if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in points))
    assert [(row["f1"], row["f2"]) for row in front] == expected
    text = bench_cli("show", "--store", str(store)).stdout
    assert f"Pareto front of run {runs[0]['run']}" in text and len(expected) >= 1


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("these are my notes")
    out = bench_cli("show", "--store", str(bad))
    assert out.returncode != 0 and "pass another --store" in out.stderr
    assert bad.read_text() == "these are my notes"


def test_an_sqlite_file_that_is_not_a_store_is_refused_unchanged(tmp_path):
    """Not even switched to WAL (which rewrites the header) before it is found to be someone else's."""
    theirs = tmp_path / "theirs.sqlite"
    with sqlite3.connect(theirs) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    before = theirs.read_bytes()
    out = bench_cli("show", "--store", str(theirs))
    assert out.returncode != 0 and "not a bench results store" in out.stderr
    assert theirs.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["theirs.sqlite"]


def test_an_out_of_space_proposal_is_stored_failed_and_told_and_none_from_ask_names_the_optimizer(tmp_path):
    """Issue 14: branin once stored a proposal outside its box as ok (value 1.7e34)."""
    class OutOfBox(Optimizer):
        def ask(self, n=1):
            if getattr(self, "broken", False):
                return None
            return [Trial({"x1": 1e9 if len(self.history) == 1 else 0.5, "x2": 2.0})]

    told = []

    class Recording(OutOfBox):
        def tell(self, trials, results):
            super().tell(trials, results)
            told.extend(r.status for r in results)

    registry = Registry()
    store = Store(tmp_path / "results.sqlite")
    trials = store.trials(run(RunSpec("synthetic/branin", "out-of-box", 0, 3, "live"), store, registry,
                              optimizer=Recording(registry.problem("synthetic/branin").create().space,
                                                  registry.problem("synthetic/branin").create().objectives)))
    assert [st.result.status for st in trials] == [Status.OK, Status.FAILED, Status.OK] == told
    assert trials[1].result.error.startswith("the optimizer proposed an invalid configuration")
    assert trials[1].result.objectives == {}
    broken = OutOfBox(registry.problem("synthetic/branin").create().space, ())
    broken.broken = True
    with pytest.raises(OptimizerError, match="optimizer out-of-box: ask\\(1\\) returned NoneType, not a list of Trial"):
        run(RunSpec("synthetic/branin", "out-of-box", 1, 3, "live"), store, registry, optimizer=broken)


def test_an_optimizer_that_raises_in_tell_is_named_and_its_evaluated_trials_are_kept(tmp_path):
    class Forgetful(Optimizer):
        def ask(self, n=1):
            return [Trial({"x1": 0.5, "x2": float(len(self.history))})]

        def tell(self, trials, results):
            if self.history:
                raise KeyError("Trial(config=...)")
            super().tell(trials, results)

    registry = Registry()
    store = Store(tmp_path / "results.sqlite")
    problem = registry.problem("synthetic/branin").create()
    with pytest.raises(OptimizerError, match=r"optimizer forgetful: tell\(\) of trial\(s\) \[1\] raised KeyError"):
        run(RunSpec("synthetic/branin", "forgetful", 0, 5, "live"), store, registry,
            optimizer=Forgetful(problem.space, problem.objectives))
    assert [st.number for st in store.trials(1)] == [0, 1]


class Misreporting(Problem):
    """Returns, by configuration, each way a result can break the contract (issue 14: these passed as ok)."""

    space = ConfigurationSpace({"x": Float("x", (0.0, 7.0))})
    objectives = (Objective("loss", "min", bounds=(0.0, 1.0)),)
    RESULTS = [({"loss": 0.5}, math.nan), ({"loss": 0.5}, -1.0), ({"loss": 0.5}, math.inf),
               ({"loss": 0.5, "acc": 0.9}, 1.0), ({"loss": "low"}, 1.0), ({"loss": 3.0}, 1.0), ({"loss": 0.5}, 1.0)]

    def evaluate(self, config, fidelity, seed):
        objectives, cost = self.RESULTS[int(config["x"])]
        return Result(objectives, cost=cost)


def test_results_are_checked_at_the_boundary_stored_as_failed_or_flagged_and_the_run_goes_on(store):
    class Sweep(Optimizer):
        def ask(self, n=1):
            return [Trial({"x": float(len(self.history))})]

    results = Store(store)
    problem = Misreporting("live")
    run_id = run(RunSpec("test/misreporting", "sweep", 0, 7, "live"), results, Registry(), problem=problem,
                 optimizer=Sweep(problem.space, problem.objectives))
    trials = results.trials(run_id)
    assert [st.result.status for st in trials] == [Status.FAILED] * 5 + [Status.OK] * 2
    errors = [st.result.error for st in trials]
    assert all("the problem returned cost" in e and "finite seconds >= 0" in e for e in errors[:3])
    assert "undeclared objective(s) ['acc']" in errors[3] and "not numbers: {'loss': 'low'}" in errors[4]
    assert [st.result.cost for st in trials] == [0.0] * 3 + [1.0] * 4
    assert all(st.result.objectives == {} for st in trials[:5])
    assert trials[5].result.extra["out_of_bounds"] == {"loss": 3.0} and "out_of_bounds" not in trials[6].result.extra


def test_a_trial_that_costs_more_than_the_trial_timeout_is_stored_as_timeout_at_that_cost(store):
    """On the simulated clock a trial's cost (a table row's measured seconds, a synthetic problem's nominal
    ones) is what it would have run: over the limit, it is cut there. Hartmann6 costs 0.01 s a step."""
    args = ["run", "synthetic/hartmann6", "-o", "hyperband", "--budget", "12", "--store", str(store)]
    assert bench_cli(*args, "--trial-timeout", "0.5").returncode == 0
    rows = [(fidelity, status, cost, error) for _, _, _, _, fidelity, _, status, error, cost, *_ in stored_trials(store)]
    timed_out = [row for row in rows if row[1] == "timeout"]
    assert timed_out == [row for row in rows if row[0] > 50]
    assert timed_out and all(cost == 0.5 and "over the 0.5 s limit" in error for *_, cost, error in timed_out)
    assert {status for _, status, *_ in rows} == {"ok", "timeout"}
    again = bench_cli(*args)  # without the limit it is another run, not a rerun
    assert again.returncode == 0, again.stderr
    assert len([row for row in stored_trials(store) if row[6] == "timeout"]) == len(timed_out)
