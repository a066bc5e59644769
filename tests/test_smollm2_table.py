"""The shipped SmolLM2 LoRA table (issue 12), checked from its committed files: measured by `bench table build`
over the Sobol design with repeats, it discriminates beyond its noise, its surrogate ranks held-out
configurations, it answers every fidelity the live mode takes, and it rebuilds from its rows
(byte for byte but for the GP's last bits, which differ between CPU types)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench.build import design_configs, parse_design
from bench.registry import Registry
from bench.store import read_jsonl
from bench.tables import read_manifest
from conftest import assert_documented_build_rewrites

NAME, PROBLEM = "lora-hpo-smollm2-135m-wordnet", "lora-hpo/smollm2-135m-wordnet"
TABLES = Path(__file__).resolve().parents[1] / "surrogate_tables"
# the documented build (docs/tables.md); the same command starts, continues and rewrites the table
BUILD = ["table", "build", PROBLEM, "--design", "sobol:200", "--repeats", "16", "--seeds", "0-2",
         "--executor", "process", "--workers", "2", "--resume"]


@pytest.fixture(scope="module")
def runs():
    return read_jsonl(TABLES / f"{NAME}.trials.jsonl")


@pytest.fixture(scope="module")
def table_rows():
    return pq.read_table(TABLES / f"{NAME}.parquet").to_pylist()


def test_the_table_is_the_sobol_design_plus_sixteen_configurations_under_three_seeds(runs):
    problem = Registry().problem(PROBLEM).create("table")
    by_seed = {run["card"]["seed"]: [t["config"] for t in run["trials"]] for run in runs}
    assert sorted(by_seed) == [0, 1, 2] and all(run["status"] == "complete" for run in runs)
    design = design_configs(problem, parse_design("sobol:200"))
    assert by_seed[0] == design and len({tuple(sorted(c.items())) for c in design}) >= 200
    assert by_seed[1] == by_seed[2] and len(by_seed[1]) >= 16 and all(c in design for c in by_seed[1])
    assert all(t["status"] == "ok" or t["error"] for run in runs for t in run["trials"])


def test_the_best_configuration_beats_the_median_one_by_five_standard_errors(table_rows):
    final = [r for r in table_rows if r["steps"] == 60 and r["status"] == "ok" and r["seed"] == 0]
    best = max(final, key=lambda r: r["wordnet_acc"])
    median = statistics.median(r["wordnet_acc"] for r in final)
    assert best["items"] >= 800 and best["wordnet_acc_stderr"] <= 0.02
    assert (best["wordnet_acc"] - median) / best["wordnet_acc_stderr"] >= 5


def test_the_surrogate_ranks_held_out_configurations_and_the_manifest_reports_every_level():
    manifest = read_manifest(NAME, TABLES)
    levels = ["15", "30", "45", "60"]
    for family in ("random-forest", "gp"):
        quality = manifest["surrogates"][family]["quality"]
        assert all(set(quality[o]["levels"]) == set(levels) for o in ("wordnet_acc", "wordnet_acc_norm"))
    assert manifest["surrogates"]["random-forest"]["quality"]["wordnet_acc"]["levels"]["60"]["spearman"] >= 0.85
    curve = manifest["curve_rank_correlation"]["wordnet_acc"]
    assert set(curve) == set(levels[:-1]) and all(curve[lv]["trials"] == 232 for lv in levels[:-1])
    assert manifest["noise"]["repeats"]["wordnet_acc"]["60"]["configurations"] >= 16


def test_the_table_answers_every_fidelity_of_the_live_mode_at_the_next_measured_level(table_rows):
    spec = Registry().problem(PROBLEM)
    assert spec.modes == ("table", "live") and spec.board["budget"] == 50
    problem = spec.create("table", noise=False)
    measured = {k: v for k, v in table_rows[0].items() if k in problem.space}
    levels = sorted({r["steps"] for r in table_rows})
    assert levels == [15, 30, 45, 60] and problem.fidelity.max == spec.kwargs["live"]["steps"]
    for steps in range(1, 61):
        result = problem.evaluate(measured, steps, seed=0)
        level = min(lv for lv in levels if lv >= steps)
        row = next(r for r in table_rows if r["steps"] == level and r["seed"] == 0 and
                   all(r[p] == v for p, v in measured.items()))
        assert result.source == "table" and result.fidelity == level
        assert result.objectives["wordnet_acc"] == row["wordnet_acc"]
    off = dict(problem.space.get_default_configuration())
    assert problem.evaluate(off, 20, seed=0).source == "surrogate" and problem.evaluate(off, 20, 0).fidelity == 30


@pytest.mark.slow
def test_the_documented_build_rewrites_the_table_from_its_committed_rows(tmp_path):
    assert_documented_build_rewrites(tmp_path, TABLES, NAME, BUILD)
