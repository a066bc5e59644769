import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from bench.registry import Registry
from bench.runner import RunSpec, run
from bench.space import InvalidConfiguration
from bench.store import Store
from bench.tables import Forest, Table, TableError, table_names, tables_dir, verify
from conftest import REPO, assert_rebuilt_table, bench_cli

ONE_B = "lora-hpo-llama-3.2-1b-alpaca"
THREE_B = "lora-hpo-llama-3.2-3b-alpaca"


@pytest.fixture(scope="module")
def table():
    return Table(ONE_B)


def test_both_tables_verify_and_report_their_surrogate_quality():
    assert set(table_names()) >= {ONE_B, THREE_B}
    for name, rows in ((ONE_B, 203), (THREE_B, 150)):
        manifest = verify(name)
        assert manifest["rows"] == rows
        assert manifest["provenance"]["source"]["license"] == "MIT"
        assert set(manifest["surrogates"]) == {"random-forest", "gp"}  # two inductive biases
        for entry in manifest["surrogates"].values():
            quality = entry["quality"]
            assert set(quality) == {"hellaswag_acc", "hellaswag_acc_norm", "mmlu_acc"}
            assert all(-1 <= q["spearman"] <= 1 and q["folds"] == 10 for q in quality.values())
    assert verify(ONE_B)["surrogates"]["random-forest"]["quality"]["hellaswag_acc"]["spearman"] >= 0.8
    out = bench_cli("table", "verify")
    assert out.returncode == 0 and out.stdout.count("ok ") == len(table_names())


def test_license_notice_ships_with_the_tables():
    notice = tables_dir() / "sources" / "lora-hpo-llama32" / "LICENSE"
    assert "MIT License" in notice.read_text() and "Nathan Davouse" in notice.read_text()


@pytest.fixture
def tampered(tmp_path):
    """A copy of the shipped tables that a test may damage, used through $BENCH_TABLES."""
    directory = tmp_path / "tables"
    shutil.copytree(tables_dir(), directory, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    env = {**os.environ, "BENCH_TABLES": str(directory)}
    return directory, env


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("suffix, message", [(".parquet", ".parquet has sha256 "),
                                             (".surrogate.safetensors", "random-forest surrogate"),
                                             (".gp.safetensors", "gp surrogate")])
def test_a_flipped_byte_fails_verify_and_runs_and_writes_nothing(tampered, tmp_path, suffix, message):
    directory, env = tampered
    path = directory / f"{ONE_B}{suffix}"
    flip_byte(path, path.stat().st_size // 2)
    out = bench_cli("table", "verify", ONE_B, env=env)
    assert out.returncode != 0 and message in out.stderr
    # both hashes whole: they may share any prefix
    assert len(re.findall(r"sha256 [0-9a-f]{64}, the manifest [0-9a-f]{64};", out.stderr)) == 1
    assert bench_cli("table", "verify", THREE_B, env=env).returncode == 0
    store = tmp_path / "never.sqlite"
    out = bench_cli("run", "lora-hpo/llama-3.2-1b-alpaca", "--optimizer", "lhs", "--store", str(store), env=env)
    assert out.returncode != 0
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not store.exists()


def test_a_tampered_manifest_is_refused(tampered):
    directory, env = tampered
    manifest = json.loads((directory / f"{ONE_B}.json").read_text())
    manifest["rows"] = 202
    (directory / f"{ONE_B}.json").write_text(json.dumps(manifest))
    with pytest.raises(TableError, match="203 rows, the manifest says 202"):
        verify(ONE_B, directory)
    (directory / f"{THREE_B}.json").write_text("{not json")
    with pytest.raises(TableError, match="not valid JSON"):
        verify(THREE_B, directory)


def test_a_swapped_surrogate_with_its_hash_updated_changes_the_run_card_and_is_refused_on_the_board(tampered,
                                                                                                      tmp_path):
    """Issue 14: a swapped surrogate (manifest hash updated) passed, and runs recorded the same table_sha256."""
    directory, env = tampered
    path = directory / f"{ONE_B}.surrogate.safetensors"
    shutil.copy(directory / f"{THREE_B}.surrogate.safetensors", path)
    manifest = json.loads((directory / f"{ONE_B}.json").read_text())
    manifest["surrogates"]["random-forest"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (directory / f"{ONE_B}.json").write_text(json.dumps(manifest))
    cards = {}
    for name, environment in (("shipped", None), ("swapped", env)):
        store = tmp_path / f"{name}.sqlite"
        out = bench_cli("run", "lora-hpo/llama-3.2-1b-alpaca", "-o", "random", "--budget", "2", "--store", str(store),
                        env=environment)
        assert out.returncode == 0, out.stderr
        cards[name] = Store(store).runs()[0]["card"]["problem_info"]
    assert cards["shipped"]["table_sha256"] == cards["swapped"]["table_sha256"]  # the data file is the same
    files = {name: card["table_files"] for name, card in cards.items()}
    changed = {f for f in files["shipped"] if files["shipped"][f] != files["swapped"][f]}
    assert changed == {f"{ONE_B}.json", f"{ONE_B}.surrogate.safetensors"}


def test_junk_and_hostile_manifests_are_refused_in_one_line_without_hanging(tampered):
    directory, env = tampered
    hostile = {"junk": "[1, 2]", "untyped": json.dumps({"name": 1, "data": "x.parquet", "sha256": 0, "rows": "x",
                                                        "schema": 1, "space": 2, "objectives": 3})}
    manifest = json.loads((directory / f"{ONE_B}.json").read_text())
    hostile["device"] = json.dumps({**manifest, "data": "zero"})
    hostile["outside"] = json.dumps({**manifest, "data": "../../etc/passwd"})
    os.symlink("/dev/zero", directory / "zero")
    for name, text in hostile.items():
        (directory / f"{name}.json").write_text(text)
    expected = {"junk": "is a JSON list, not an object", "untyped": "has the wrong type for name (int, not str)",
                "device": "zero is not a regular file", "outside": "names '../../etc/passwd', not a file beside it"}
    for name, fragment in expected.items():
        out = bench_cli("table", "verify", name, env=env, timeout=60)
        assert out.returncode != 0 and fragment in out.stderr, (name, out.stderr)
        assert "Traceback" not in out.stderr
    listing = bench_cli("table", "list", env=env, timeout=60)
    assert listing.returncode == 0 and "Traceback" not in listing.stderr
    assert ONE_B in listing.stdout and THREE_B in listing.stdout
    # list reads manifests only (verify opens the files they name)
    assert sorted(line.split(":")[0] for line in listing.stderr.splitlines()) == ["broken table junk",
                                                                                 "broken table untyped"]


def test_exact_lookup_returns_the_measurement_and_the_seed_picks_a_replicate(table):
    repeated = [rows for rows in table.index.values() if len(rows) == 2
                and table.values["hellaswag_acc"][rows[0]] != table.values["hellaswag_acc"][rows[1]]]
    assert repeated  # the 1B data measured some configurations twice, with different results
    first, second = repeated[0]
    config = table.configs[first]
    for seed, row in ((0, first), (1, second), (2, first)):
        result = table.lookup(config, seed, "surrogate")
        assert result.source == "table" and result.measured
        assert result.objectives["hellaswag_acc"] == table.values["hellaswag_acc"][row]
        assert result.cost == table.cost[row] and result.extra["replicate"] == seed % 2
        assert result.table_sha256 == table.sha256


def test_off_grid_lookups_are_labelled_nearest_or_surrogate(table):
    measured = dict(table.configs[5])
    off = dict(measured, lora_dropout=min(measured["lora_dropout"] + 1e-6, 0.5))
    nearest = table.lookup(off, 0, "nearest")
    assert nearest.source == "nearest" and not nearest.measured
    assert nearest.extra["measured_config"] == measured
    assert nearest.objectives["hellaswag_acc"] == table.values["hellaswag_acc"][5]
    predicted = table.lookup(off, 0, "surrogate")
    assert predicted.source == "surrogate" and not predicted.measured
    assert set(predicted.objectives) == {"hellaswag_acc", "hellaswag_acc_norm", "mmlu_acc"}
    assert 0.2 < predicted.objectives["hellaswag_acc"] < 0.6
    with pytest.raises(InvalidConfiguration):
        table.lookup(dict(measured, lora_rank=65), 0, "surrogate")


def test_forest_predicts_exactly_like_scikit_learn():
    from sklearn.ensemble import RandomForestRegressor

    from bench.tables import FOREST_SETTINGS

    rng = np.random.default_rng(3)
    x, y = rng.random((120, 4)), rng.random(120)
    forest = Forest.fit(x, {"y": y})
    reference = RandomForestRegressor(**FOREST_SETTINGS).fit(x, y)
    queries = rng.random((200, 4))
    ours = np.array([forest.predict(q)["y"] for q in queries])
    assert np.allclose(ours, reference.predict(queries), rtol=0, atol=1e-12)
    assert np.array_equal(forest.predict_many(queries)["y"], ours)
    assert forest.predict_many(queries[:0])["y"].shape == (0,)  # an empty fold of a held-out check


def test_the_compiled_forest_walk_answers_bit_for_bit_as_numpy_and_one_query_as_a_batch():
    from bench.tables import _forest_kernel

    table = Table("lora-hpo-llama-3.2-1b-alpaca")
    forest = table.surrogate("random-forest")
    assert _forest_kernel() is not None, "this machine has a C compiler: the compiled walk must be in use"
    queries = np.random.default_rng(5).random((203, forest.feature.max() + 1))  # not a multiple of the lanes
    queries[::7, 2] = np.nan  # an inactive parameter goes right, as in scikit-learn
    queries[3] = table.x[11]  # a measured point: thresholds are midpoints, never equal to it
    assert np.array_equal(forest.leaves(queries), forest.leaves(queries, compiled=False), equal_nan=True)
    assert len(forest.left) % 8, "a last group of fewer trees than the lanes is walked too"
    few = queries[:5]  # fewer than the lanes: each query walks the trees eight at a time
    assert np.array_equal(forest.leaves(few), forest.leaves(few, compiled=False), equal_nan=True)
    batch = table.predict_many(queries)
    for i in (0, 3, 7, 202):
        single = forest.predict(queries[i])
        assert all(single[o] == batch[o][i] for o in table.objectives)
    with ThreadPoolExecutor(2) as pool:  # each thread its own buffers
        singles = list(pool.map(forest.predict, queries[:40]))
    assert all(singles[i][o] == batch[o][i] for i in range(40) for o in table.objectives)
    large = np.random.default_rng(7).random((1300, queries.shape[1]))  # several chunks, shared among threads
    walked = forest.leaves(large.astype(np.float32).astype(np.float64), compiled=False)
    means = np.add.reduce(walked.reshape(len(large), len(table.objectives), -1), axis=2) / (walked.shape[1] // len(table.objectives))
    assert all(np.array_equal(table.predict_many(large)[o], means[:, i]) for i, o in enumerate(table.objectives))


def test_without_a_compiler_the_forest_walks_in_numpy(tmp_path, monkeypatch):
    from bench import tables

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    tables._forest_kernel.cache_clear()
    try:
        assert tables._forest_kernel() is None
        forest = Table("lora-hpo-llama-3.2-1b-alpaca").surrogate()
        x = np.random.default_rng(6).random((3, forest.feature.max() + 1))
        assert np.array_equal(forest.leaves(x), forest.leaves(x, compiled=False))
        assert not list(tmp_path.rglob("*.so"))  # nothing half-built left behind
    finally:
        tables._forest_kernel.cache_clear()


def test_the_stored_gp_predicts_what_scikit_learn_fitted():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    from bench.tables import GaussianProcess

    rng = np.random.default_rng(4)
    x = rng.random((80, 3))
    y = np.sin(6 * x[:, 0]) + x[:, 1] ** 2 + 0.05 * rng.standard_normal(80)
    gp = GaussianProcess.fit(x, {"y": y})
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.ones(3), (1e-2, 1e2)) + WhiteKernel(1e-2, (1e-6, 1.0))
    reference = GaussianProcessRegressor(kernel, normalize_y=True).fit(x, y)
    queries = rng.random((50, 3))
    assert np.allclose(gp.predict_many(queries)["y"], reference.predict(queries), atol=1e-9)
    assert gp.predict(queries[0])["y"] == pytest.approx(float(reference.predict(queries[:1])[0]), abs=1e-9)


def test_every_surrogate_family_answers_off_grid_lookups(table):
    measured = table.configs[0]
    off = dict(measured, lora_dropout=0.123456)
    forest, gp = (table.lookup(off, 0, "surrogate", surrogate=family) for family in ("random-forest", "gp"))
    assert forest.source == gp.source == "surrogate" and forest.objectives != gp.objectives
    assert table.lookup(off, 0, "surrogate").objectives == forest.objectives  # the first family is the default
    with pytest.raises(TableError, match="has no 'knn' surrogate; it has random-forest, gp"):
        table.lookup(off, 0, "surrogate", surrogate="knn")


@pytest.mark.slow
def test_the_converter_rebuilds_the_shipped_tables_byte_for_byte(tmp_path):
    from threadpoolctl import threadpool_limits

    from bench_lora.convert_llama32 import main

    with threadpool_limits(limits=2):  # the shipped files were written with one BLAS thread: the count must not matter
        main([str(tables_dir() / "sources" / "lora-hpo-llama32"), str(tmp_path)])
    for name in (ONE_B, THREE_B):
        assert_rebuilt_table(tmp_path, tables_dir(), name)


def test_gp_scored_bamsoo_rows_are_not_in_the_table(table):
    raw = tables_dir() / "sources" / "lora-hpo-llama32" / "bamsoo_bis.jsonl"
    lines = [json.loads(line) for line in raw.read_text().splitlines()]
    approximated = [i + 1 for i, item in enumerate(lines) if item["info"].get("score_state") == "approximated"]
    assert len(approximated) == 16
    assert table.extra_columns["producer"].count("BaMSOO") == 52


def test_table_run_is_fast_labelled_and_repeatable(tmp_path):
    args = ["run", "lora-hpo/llama-3.2-1b-alpaca", "--optimizer", "lhs", "--budget", "50", "--seeds", "0-9"]
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    assert bench_cli(*args, "--store", str(first)).returncode == 0
    assert bench_cli(*args, "--store", str(second)).returncode == 0
    runs = json.loads(bench_cli("show", "--store", str(first), "--json").stdout)
    assert len(runs) == 10 and all(r["trials"] == 50 and r["mode"] == "table" for r in runs)
    assert all(set(r["sources"]) <= {"table", "nearest", "surrogate"} for r in runs)
    assert sum(r["sources"].get("surrogate", 0) for r in runs) > 0
    assert json.loads(bench_cli("show", "--store", str(second), "--json").stdout) == runs
    text = bench_cli("show", "--store", str(first)).stdout
    assert "surrogate 50" in text


def test_simulated_workers_record_consistent_times(tmp_path):
    store = Store(tmp_path / "w.sqlite")
    run_id = run(RunSpec("lora-hpo/llama-3.2-3b-alpaca", "random", 0, 30, "table", workers=3), store, Registry())
    trials = store.trials(run_id)
    assert {t.worker for t in trials} == {0, 1, 2}
    for t in trials:
        assert t.end - t.start == pytest.approx(t.result.cost)
    for t in trials:  # never more than three trials running at once
        assert sum(o.start <= t.start < o.end for o in trials) <= 3
    by_worker = {}
    for t in sorted(trials, key=lambda t: t.start):
        assert t.start >= by_worker.get(t.worker, 0.0) - 1e-9
        by_worker[t.worker] = t.end
    serial = max(t.end for t in trials)
    assert serial < sum(t.result.cost for t in trials) / 2.5  # three workers: close to a third of the serial time


def test_noise_model_and_determinism_follow_the_replicates():
    registry = Registry()
    one = registry.problem("lora-hpo/llama-3.2-1b-alpaca").create("table", noise=False)
    three = registry.problem("lora-hpo/llama-3.2-3b-alpaca").create("table", noise=False)
    assert one.mode == "table" and not one.deterministic and three.deterministic
    assert not registry.problem("lora-hpo/llama-3.2-3b-alpaca").create().deterministic  # observed with noise
    repeats = one.table.manifest["noise"]["repeats"]["hellaswag_acc"]["all"]
    assert repeats["configurations"] == 35 and repeats["pairs_within_0.002"] == 33


@pytest.mark.slow
def test_an_installed_non_editable_bench_finds_its_tables(tmp_path):
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(site), str(REPO)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    code = ("import bench, bench.tables as t; print(bench.__file__); print(t.tables_dir());"
            " print(t.table_names()); [t.verify(n) for n in t.table_names()]")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(str(site)) and lines[1].startswith(str(site))
    assert ONE_B in lines[2] and THREE_B in lines[2]


def test_noisy_observations_are_reproducible_scaled_by_the_noise_model_and_off_gives_the_predictions(tmp_path):
    """Issue 15: an unmeasured configuration is observed as a real evaluation would be: the surrogate's mean plus
    the noise the table's model gives (binomial sampling of the evaluation set, seed-to-seed spread of repeats)."""
    import numpy as np

    registry = Registry()
    noisy = registry.problem("lora-hpo/llama-3.2-1b-alpaca").create("table")
    quiet = registry.problem("lora-hpo/llama-3.2-1b-alpaca").create("table", noise=False)
    assert not noisy.deterministic and noisy.table.manifest["noise"]["evaluation"]["all"]["items"]["hellaswag_acc"] == 10042
    configs = [noisy.space.sample_configuration() for _ in range(400)]
    z, measured = [], noisy.table.configs[7]
    for config in map(dict, configs):
        seen = noisy.evaluate(config, None, 3)
        expected = noisy.table.lookup(config, 3, "surrogate")
        assert quiet.evaluate(config, None, 3) == expected  # --noise off: today's noise-free predictions
        assert seen.extra["noise_free"] == expected.objectives and seen == noisy.evaluate(config, None, 3)
        sd = seen.extra["noise_sd"]["hellaswag_acc"]
        p = expected.objectives["hellaswag_acc"]
        assert sd == pytest.approx(math.sqrt(p * (1 - p) / 10042 + 0.007581**2))
        z.append((seen.objectives["hellaswag_acc"] - p) / sd)
        assert seen.objectives != noisy.evaluate(config, None, 4).objectives  # another seed, another draw
    assert abs(np.mean(z)) < 0.15 and 0.9 < np.std(z) < 1.1
    row = noisy.evaluate(measured, None, 0)  # a measured configuration: the measurement itself
    assert row.source == "table" and "noise_free" not in row.extra and row == quiet.evaluate(measured, None, 0)
