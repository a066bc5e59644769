"""`bench table build`: a design measured live through the runner, resumable, rows as text, a table from them."""

from __future__ import annotations

import json
import os
import re
import shutil

import pyarrow.parquet as pq
import pytest
from ConfigSpace import ConfigurationSpace, Float

from bench.build import BuildError, build, design_configs, parse_design
from bench.hookspecs import ProblemSpec
from bench.problem import Objective, Problem
from bench.registry import Registry
from bench.space import Fidelity, InvalidConfiguration
from bench.store import read_jsonl
from bench.tables import Table, verify
from bench.trial import Result, Status
from conftest import bench_cli

NAME = "test-curve"
FILES = (".parquet", ".json", ".surrogate.safetensors", ".gp.safetensors", ".trials.jsonl")


class Curve(Problem):
    """A synthetic learning curve scored at 10, 20 and 40 steps; the seed shifts the score a little
    and x >= 0.875 diverges after step 10. ``stop_at``: the k-th evaluation is interrupted (Ctrl-C)."""

    objectives = (Objective("score", "max", bounds=(0.0, 1.0)),)
    fidelity = Fidelity("steps", 1, 40)

    def __init__(self, mode: str, stop_at: int | None = None, upper: float = 1.0, noise: float = 0.005,
                 libraries: str = "1.0") -> None:
        super().__init__(mode)
        self.space = ConfigurationSpace({"x": Float("x", (0.0, upper)), "y": Float("y", (0.0, 1.0))})
        self.stop_at, self.noise, self.libraries, self.calls = stop_at, noise, libraries, 0

    def evaluate(self, config, fidelity, seed):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        final = 0.9 - (config["x"] - 0.3) ** 2 - (config["y"] - 0.6) ** 2 + self.noise * seed
        curve = []
        for level in [level for level in (10, 20) if level < fidelity] + [fidelity]:
            if config["x"] >= 0.875 and level > 10:
                return Result.failure(f"non-finite training loss nan at step {level}", 1.5 * level, Status.DIVERGED,
                                      fidelity=fidelity, extra={"curve": curve})
            curve.append({"steps": level, "score": final * level / (level + 10), "score_stderr": 0.02, "items": 200,
                          "cpu_seconds": 0.5 * level, "wall_seconds": 0.6 * level, "train_loss": 2 / level})
        return Result({"score": curve[-1]["score"]}, cost=0.7 * fidelity, fidelity=fidelity, extra={"curve": curve})

    def provenance(self):
        return {"setup": {"noise": self.noise}, "libraries": {"synthetic-lib": self.libraries}}


def registry(**kwargs) -> Registry:
    found = Registry()
    found.problems["test/curve"] = ProblemSpec("test/curve", "a synthetic learning curve", "test_table_build:Curve",
                                               ("score",), multi_fidelity=True, kwargs=kwargs)
    return found


def make(out, reg=None, **options):
    options = {"seeds": [0, 1], "repeats": 2, **options}
    return build(reg or registry(), "test/curve", options.pop("design", "sobol:8"), options.pop("seeds"), out, **options)


def rows(out, without=("recorded",)):
    """The table's rows, NaN written as "nan" so that rows compare equal."""
    return [{k: "nan" if v != v else v for k, v in row.items() if k not in without}
            for row in pq.read_table(out / f"{NAME}.parquet").to_pylist()]


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else None


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """An uninterrupted build: 8 design points on seed 0, 2 of them again on seed 1."""
    out = tmp_path_factory.mktemp("whole")
    make(out)
    return out


def test_the_design_is_the_scrambled_sobol_sequence_mapped_into_the_space():
    from scipy.stats import qmc

    problem = Curve("live")
    configs = design_configs(problem, parse_design("sobol:8"))
    unit = qmc.Sobol(d=2, scramble=True, seed=0).random_base2(3)
    assert configs == [{"x": float(u[0]), "y": float(u[1])} for u in unit]
    assert design_configs(problem, parse_design("sobol:5")) == configs[:5]  # not a power of two: the first 5
    for bad in ("sobol:0", "halton:8", "sobol:x", "sobol"):
        with pytest.raises(BuildError, match="is not a design; write it like sobol:64"):
            parse_design(bad)


class Tagged(Curve):
    """Curve with a design and a row column of its own (the number of tokens a point saw, absent at step 10)."""

    designs = {"corners": "the space's corners"}
    table_columns = {"tokens": "tokens seen"}

    def design(self, kind, points):
        return [{"x": x, "y": y} for x in (0.0, 0.5) for y in (0.0, 1.0)][:points]

    def evaluate(self, config, fidelity, seed):
        result = super().evaluate(config, fidelity, seed)
        for point in result.extra["curve"]:
            if point["steps"] > 10:
                point["tokens"] = 128.0 * point["steps"]
        return result


def test_a_problem_brings_its_own_design_and_row_columns_and_a_build_its_own_kwargs(tmp_path):
    reg = Registry()
    reg.problems["test/tagged"] = ProblemSpec("test/tagged", "tagged", "test_table_build:Tagged", ("score",),
                                              multi_fidelity=True, kwargs={"noise": 0.5},
                                              table_build={"noise": 0.0})
    manifest = build(reg, "test/tagged", "corners:3", [0], tmp_path)
    assert manifest["provenance"]["live_setup"]["setup"] == {"noise": 0.0}  # the build's kwargs, not the run's
    assert manifest["columns"] == {"tokens": "tokens seen"} and "tokens" in manifest["extra_columns"]
    table = pq.read_table(tmp_path / "test-tagged.parquet").to_pylist()
    assert [(r["x"], r["y"], r["steps"]) for r in table] == [(x, y, s) for x, y in ((0.0, 0.0), (0.0, 1.0), (0.5, 0.0))
                                                              for s in (10, 20, 40)]
    assert [r["tokens"] if r["steps"] > 10 else r["tokens"] != r["tokens"] for r in table] == [
        True, 2560.0, 5120.0] * 3  # NaN where the point has none
    with pytest.raises(BuildError, match=r"\(kinds: sobol;"):
        build(registry(), "test/curve", "corners:3", [0], tmp_path / "other")


@pytest.mark.parametrize("executor", ["local", "process"])
def test_every_executors_workers_measure_the_builds_own_setup_not_a_runs(tmp_path, executor):
    from bench.executors import make_executor

    reg = Registry()
    reg.problems["test/tagged"] = ProblemSpec("test/tagged", "tagged", "test_table_build:Tagged", ("score",),
                                              multi_fidelity=True, kwargs={"noise": 0.5},
                                              table_build={"noise": 0.0})
    build(reg, "test/tagged", "corners:2", [1], tmp_path, executor=make_executor(executor, 1))
    top = [r for r in pq.read_table(tmp_path / "test-tagged.parquet").to_pylist() if r["steps"] == 40]
    # the run's noise 0.5 would add 0.5 x seed 1 to the score
    assert [r["score"] for r in top] == pytest.approx([(0.9 - (r["x"] - 0.3) ** 2 - (r["y"] - 0.6) ** 2) * 40 / 50
                                                       for r in top]) and len(top) == 2


def test_the_rows_file_holds_every_trial_once_and_the_table_one_row_per_curve_point(whole):
    runs = read_jsonl(whole / f"{NAME}.trials.jsonl")
    assert [(r["card"]["optimizer"], r["card"]["seed"], r["status"]) for r in runs] == [
        ("design:sobol:8", 0, "complete"), ("design:sobol:8:repeats:2", 1, "complete")]
    assert [[t["number"] for t in r["trials"]] for r in runs] == [list(range(8)), [0, 1]]
    design = [t["config"] for t in runs[0]["trials"]]
    assert [t["config"] for t in runs[1]["trials"]] == [design[0], design[4]]  # indices i * N // K
    trial = runs[0]["trials"][0]
    assert set(trial) >= {"number", "config", "fidelity", "info", "status", "objectives", "cost", "error", "source",
                          "result_fidelity", "extra", "worker", "start", "end", "recorded"}
    table = rows(whole)
    diverged = [t for r in runs for t in r["trials"] if t["status"] == "diverged"]
    assert len(diverged) == 1  # Sobol puts exactly one of 8 points in x >= 0.875, and it is not repeated
    assert len(table) == 3 * 10 - len(diverged)  # 3 curve points a trial; a diverged one: its 10 and its failure
    first = table[0]
    assert first == {"x": design[0]["x"], "y": design[0]["y"], "steps": 10, "score": pytest.approx(first["score"]),
                     "score_stderr": 0.02, "seed": 0, "items": 200, "cost_seconds": 5.0, "wall_seconds": 6.0,
                     "train_loss": 0.2, "status": "ok", "error": None}
    failure = next(r for r in table if r["status"] == "diverged")
    assert failure["steps"] == 40 and failure["error"].startswith("non-finite training loss")
    assert failure["score"] == "nan" and failure["cost_seconds"] == 30.0  # NaN objective, the trial's cost


@pytest.mark.parametrize("stop_at", [5, 10])  # in the first run, and in the repeat run
def test_a_killed_build_resumes_with_nothing_lost_or_repeated(tmp_path, whole, stop_at):
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path, registry(stop_at=stop_at))
    measured = read_jsonl(tmp_path / f"{NAME}.trials.jsonl")
    assert sum(len(r["trials"]) for r in measured) == stop_at - 1  # every finished trial is in the rows file
    assert not (tmp_path / f"{NAME}.parquet").exists()
    with pytest.raises(BuildError, match="unfinished build of test/curve .*; continue it with --resume"):
        make(tmp_path)
    make(tmp_path, resume=True)
    resumed = read_jsonl(tmp_path / f"{NAME}.trials.jsonl")
    assert [[t["number"] for t in r["trials"]] for r in resumed] == [list(range(8)), [0, 1]]
    kept = [t for r in resumed for t in r["trials"]][: stop_at - 1]
    assert kept == [t for r in measured for t in r["trials"]]  # the earlier trials exactly as recorded
    assert rows(tmp_path) == rows(whole)


def test_a_build_resumes_from_the_rows_file_alone(tmp_path, whole):
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path, registry(stop_at=4))
    before = (tmp_path / f"{NAME}.trials.jsonl").read_text().splitlines()
    for path in tmp_path.glob("*.build.sqlite*"):
        path.unlink()
    make(tmp_path, resume=True)
    after = (tmp_path / f"{NAME}.trials.jsonl").read_text().splitlines()
    assert json.loads(before[0])["status"] == "running" and json.loads(after[0])["status"] == "complete"
    assert after[1: len(before)] == before[1:]  # the trials measured before the kill, exactly as recorded
    assert rows(tmp_path) == rows(whole)


def test_writing_again_and_rebuilding_from_the_rows_file_give_identical_bytes(tmp_path, whole):
    original = {suffix: (whole / f"{NAME}{suffix}").read_bytes() for suffix in FILES}
    make(whole)  # a complete build: the table is rewritten
    assert {suffix: (whole / f"{NAME}{suffix}").read_bytes() for suffix in FILES} == original
    shutil.copy(whole / f"{NAME}.trials.jsonl", tmp_path)  # what people commit
    make(tmp_path)
    assert {suffix: (tmp_path / f"{NAME}{suffix}").read_bytes() for suffix in FILES} == original
    assert not list(tmp_path.glob("*.sqlite*"))  # nothing to measure, so no store
    assert verify(NAME, tmp_path)["rows"] == 29


def test_the_manifest_reports_levels_noise_curve_agreement_and_provenance(whole):
    manifest = verify(NAME, whole)
    assert manifest["fidelity"] == {"name": "steps", "column": "steps", "levels": [10, 20, 40], "min": 1, "max": 40}
    repeats = manifest["noise"]["repeats"]["score"]
    assert repeats["10"] == {"configurations": 2, "mean_seed_std": pytest.approx(0.005 / 2 ** 0.5 / 2, abs=1e-6)}
    assert manifest["noise"]["evaluation"]["40"]["items"] == 200
    assert 0 < manifest["noise"]["evaluation"]["40"]["score"]["mean_binomial_stderr"] < 0.04
    assert set(manifest["curve_rank_correlation"]["score"]) == {"10", "20"}
    assert manifest["curve_rank_correlation"]["score"]["20"] == {"trials": 9, "spearman": 1.0}
    quality = manifest["surrogates"]["random-forest"]["quality"]["score"]
    assert set(manifest["surrogates"]["gp"]["quality"]["score"]["levels"]) == {"10", "20", "40"}
    assert set(quality["levels"]) == {"10", "20", "40"} and quality["levels"]["40"]["rows"] == 9
    provenance = manifest["provenance"]
    assert provenance["live_setup"]["setup"] == {"noise": 0.005}
    assert provenance["versions"]["synthetic-lib"] == "1.0" and provenance["hardware"][0]["cpus"] >= 1
    assert provenance["measured_from"] <= provenance["measured_to"]


def test_lookups_at_levels_between_levels_off_table_and_on_diverged_rows(whole):
    table = Table(NAME, whole)
    runs = read_jsonl(whole / f"{NAME}.trials.jsonl")
    trials = runs[0]["trials"]
    ok = next(t for t in trials if t["status"] == "ok")
    curve = {p["steps"]: p["score"] for p in ok["extra"]["curve"]}
    top = table.lookup(ok["config"], 0, "surrogate")
    assert (top.source, top.fidelity, top.objectives["score"], top.cost) == ("table", 40, curve[40], 20.0)
    assert table.lookup(ok["config"], 0, "surrogate", 40).objectives == top.objectives
    between = table.lookup(ok["config"], 0, "surrogate", 15)  # snapped up to the next measured level
    assert (between.fidelity, between.objectives["score"], between.cost) == (20, curve[20], 10.0)
    with pytest.raises(InvalidConfiguration, match="steps=41 is above the top level 40"):
        table.lookup(ok["config"], 0, "surrogate", 41)
    repeated = runs[1]["trials"][0]["config"]
    assert table.lookup(repeated, 1, "surrogate").objectives["score"] == pytest.approx(
        table.lookup(repeated, 0, "surrogate").objectives["score"] + 0.005 * 40 / 50)  # the seed picks a replicate
    off = {"x": 0.5, "y": 0.5}
    predicted = table.lookup(off, 0, "surrogate", 15)
    assert predicted.source == "surrogate" and predicted.fidelity == 20 and 0 < predicted.objectives["score"] < 1
    assert predicted.cost == 10.0  # the median cost at that level
    assert table.lookup(off, 0, "nearest", 10).fidelity == 10
    bad = next(t for t in trials if t["status"] == "diverged")["config"]
    diverged = table.lookup(bad, 0, "surrogate")
    assert diverged.status is Status.DIVERGED and diverged.source == "table" and not diverged.objectives
    assert diverged.error.startswith("non-finite training loss") and diverged.fidelity == 40
    assert table.lookup(bad, 0, "surrogate", 10).ok  # measured before it diverged


def test_append_adds_a_new_build_onto_a_built_table(tmp_path, whole):
    make(tmp_path, registry(libraries="2.0"), design="sobol:4", seeds=[3], repeats=0,
         append=str(whole / f"{NAME}.json"))  # another library version is reported, not refused
    new = read_jsonl(tmp_path / f"{NAME}.trials.jsonl")[-1]["trials"]
    assert len(new) == 4 and len(rows(tmp_path)) == len(rows(whole)) + sum(3 if t["status"] == "ok" else 2 for t in new)
    assert rows(tmp_path)[: len(rows(whole))] == rows(whole)
    assert verify(NAME, tmp_path)["provenance"]["versions"]["synthetic-lib"] == ["1.0", "2.0"]


# The manifest of another problem's table (its data file need not exist: the build refuses before reading it).
FOREIGN = {"data": "x.parquet", "sha256": "0" * 64, "rows": 0, "schema": [], "space": {}, "objectives": []}


@pytest.mark.parametrize("case, message", [
    ("no live mode", "has no live mode"),
    ("unknown problem", "unknown problem 'test/curvy'; did you mean test/curve"),
    ("design", "'sobol:-3' is not a design"),
    ("repeats", "--repeats 9 must be between 0 and the design's 8 points"),
    ("other table", f"holds a table {NAME} of another problem; give this build another folder"),
    ("broken table", rf"holds a table {NAME} that cannot be read \(manifest"),
    ("append space", "measured in another search space than test/curve's"),
    ("append setup", r"measured with another live setup \(setup.noise: 0.01 here, 0.005 in the table\)"),
])
def test_bad_input_is_refused_before_anything_is_stored(tmp_path, whole, case, message):
    out = tmp_path / "out"
    out.mkdir()
    reg, options, problem = registry(), {}, "test/curve"
    if case == "no live mode":
        reg.problems["test/curve"] = ProblemSpec("test/curve", "table only", "test_table_build:Curve", ("score",),
                                                 modes=("table",), multi_fidelity=True)
    elif case == "unknown problem":
        problem = "test/curvy"
    elif case == "design":
        options["design"] = "sobol:-3"
    elif case == "repeats":
        options["repeats"] = 9
    elif case == "broken table":
        (out / f"{NAME}.json").write_text("[1, 2]")
    elif case == "other table":  # a folder of several tables is fine, another problem's table of this name is not
        (out / "other-table.json").write_text("{}")
        (out / f"{NAME}.json").write_text(json.dumps({**FOREIGN, "name": NAME, "problem": "test/other"}))
    else:
        reg = registry(upper=2.0) if case == "append space" else registry(noise=0.01)
        options["append"] = str(whole / f"{NAME}.json")
    before, whole_before = snapshot(out), snapshot(whole)
    options = {"seeds": [0, 1], "repeats": 2, "design": "sobol:8", **options}
    with pytest.raises((BuildError, LookupError)) as error:
        build(reg, problem, options.pop("design"), options.pop("seeds"), out, **options)
    assert len(str(error.value).splitlines()) == 1
    assert re.search(message, str(error.value))
    assert snapshot(out) == before and snapshot(whole) == whole_before


@pytest.mark.parametrize("args, message", [
    (["no/such-problem", "--design", "sobol:4"], "unknown problem 'no/such-problem'"),
    (["synthetic/branin", "--design", "grid:4"], "'grid:4' is not a design"),
    (["synthetic/branin", "--design", "sobol:4", "--seeds", "3-1"], "'3-1' is not a seed list"),
    (["synthetic/branin", "--design", "sobol:4", "--seeds", "0-1", "--repeats", "5"], "--repeats 5 must be between"),
    (["synthetic/branin", "--design", "sobol:4", "--store", "STORE"], "holds a table synthetic-branin of another"),
])
def test_the_command_refuses_bad_input_in_one_line_and_changes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    out.mkdir()
    (out / "synthetic-branin.json").write_text(json.dumps({**FOREIGN, "name": "synthetic-branin",
                                                           "problem": "synthetic/zdt1"}))
    store = tmp_path / "store.sqlite"
    args = [str(store) if a == "STORE" else a for a in args]
    before = snapshot(out)
    result = bench_cli("table", "build", *args, "--out", str(out))
    assert result.returncode != 0 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(out) == before and not store.exists()


def test_the_command_builds_a_table_and_rewrites_it_identically(tmp_path):
    args = ["table", "build", "synthetic/hartmann6", "--design", "sobol:4", "--out", str(tmp_path)]
    first = bench_cli(*args)
    assert first.returncode == 0, first.stderr
    assert f"table synthetic-hartmann6: 4 rows in {tmp_path}/synthetic-hartmann6.json" in first.stdout
    files = {p.name: p.read_bytes() for p in tmp_path.glob("synthetic-hartmann6.*") if "sqlite" not in p.name}
    assert set(files) == {f"synthetic-hartmann6{suffix}" for suffix in FILES}
    second = bench_cli(*args)
    assert second.returncode == 0 and second.stdout == first.stdout
    assert {name: (tmp_path / name).read_bytes() for name in files} == files
    assert bench_cli("table", "verify", env={**os.environ, "BENCH_TABLES": str(tmp_path)}).returncode == 0
